"""Query options of a cache URL: none may change how TLS is checked.

redis-py passes every query option to its connection as a keyword that overrides Loupe's own, so
``rediss://host?ssl_cert_reqs=none&ssl_check_hostname=false`` used to connect without verifying
anything, although the README says TLS is always verified. Such URLs are refused in one sentence;
the harmless options still work (checked against a real server).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from engine.cache.connect import open_cache
from engine.errors import BadInputError


@pytest.mark.parametrize(
    "url",
    [
        "rediss://cache.example.test:6380?ssl_cert_reqs=none&ssl_check_hostname=false",
        "rediss://cache.example.test?ssl_check_hostname=false",
        "rediss://u:secret@cache.example.test/0?ssl_ca_certs=/tmp/mine.pem",
        "rediss://cache.example.test?SSL_CERT_REQS=none",
        "rediss://cache.example.test?ssl_cert_reqs=",
        "redis://cache.example.test?connection_class=x",
        "unix:///run/valkey.sock?socket_timeout=1",
        # Names spelled with percent escapes, which redis-py decodes: refused as written.
        "rediss://cache.example.test?%73sl_cert_reqs=none",
        "redis://cache.example.test/0?pass%77ord=secret",
    ],
)
def test_options_that_could_weaken_the_connection_are_refused(url: str) -> None:
    with pytest.raises(BadInputError) as refused:
        open_cache(url)
    message = str(refused.value)
    assert message.startswith("The cache URL") and message.count(". ") == 0 and "secret" not in message
    if "ssl" in url.lower():
        assert "always verifies the server's certificate and host name" in message


def test_the_accepted_options_still_work(loupe_home: Path) -> None:
    embedded = open_cache()  # a real server on a Unix socket in this test's private home
    try:
        socket = loupe_home / "cache" / "valkey" / "valkey.sock"
        cache = open_cache(f"unix://{quote(str(socket))}?db=3&client_name=loupe-test")
        try:
            assert cache.available
            cache.set("test", "k", np.ones(2, dtype=np.float32))
            assert cache.get("k") is not None and embedded.get("k") is None  # another database
        finally:
            cache.close()
    finally:
        embedded.close()


def test_a_password_option_spelled_with_escapes_is_redacted() -> None:
    from engine.cache.connect import _redacted

    shown = _redacted("redis://cache.example.test/0?db=1&pass%77ord=secret")
    assert "secret" not in shown and shown.endswith("db=1&pass%77ord=***")
