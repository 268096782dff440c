"""Settings that a hostile or broken file cannot turn into a traceback, and that never hold a
secret: any bytes or JSON give settings (the file's or the defaults, with a logged warning),
a password of any shape is stripped before saving, and two processes saving at once cannot
mix their files."""

from __future__ import annotations

import json
import logging
import stat
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.user.settings import (
    SCHEMA_VERSION,
    Settings,
    default_projection,
    load_settings,
    save_settings,
    settings_path,
    without_password,
)
from tests.strategies import JSON

SECRET = "s3/cr?t#p@ss"  # a password with every character that ends a URL's parts
FIELDS = [name for name in Settings.__dataclass_fields__]
# A settings object whose fields, and version, are any JSON: what a hand-edit could make.
SETTINGS_LIKE = st.fixed_dictionaries(
    {},
    optional={"version": JSON | st.integers(-3, SCHEMA_VERSION + 2), **{name: JSON for name in FIELDS}},
)


def loads_to_settings(text: str | bytes) -> Settings:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    loaded = load_settings()
    assert isinstance(loaded, Settings)
    for name in FIELDS:  # every value has its field's type, whatever the file held
        assert isinstance(getattr(loaded, name), type(getattr(Settings(), name))), name
    assert all(isinstance(entry, str) for entry in loaded.recent_files)
    default_projection(loaded)  # never raises either
    return loaded


@pytest.mark.parametrize("version", [0, -1, -(2**70), "2", None, 1.5, True])
def test_a_version_no_loupe_wrote_gives_the_defaults_with_a_warning(
    version: object, caplog: pytest.LogCaptureFixture
) -> None:
    settings_path().write_text(json.dumps({"version": version, "model": "/models/mine"}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="engine.user.settings"):
        assert load_settings() == Settings()
    assert "settings version" in caplog.text


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_json_nested_100000_deep_gives_the_defaults_with_a_warning(
    opening: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings_path().write_text(opening * 100_000, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="engine.user.settings"):
        assert load_settings() == Settings()
    assert "using defaults" in caplog.text


@given(text=JSON.map(json.dumps))
def test_any_json_gives_settings(text: str) -> None:
    loads_to_settings(text)


@given(data=SETTINGS_LIKE)
def test_any_settings_like_object_gives_settings_of_the_right_types(data: dict[str, Any]) -> None:
    loads_to_settings(json.dumps(data))


@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_give_settings(raw: bytes) -> None:
    loads_to_settings(raw)


# -- no secret is saved ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "saved"),
    [
        (f"redis://loupe:{SECRET}@cache.example.test:6379/0", "redis://loupe@cache.example.test:6379/0"),
        ("rediss://loupe:pa/ss@cache.example.test:6380/2", "rediss://loupe@cache.example.test:6380/2"),
        (f"redis://:{SECRET}@cache.example.test", "redis://cache.example.test"),
        (f"redis://cache.example.test:6379/0?password={SECRET}", "redis://cache.example.test:6379/0"),
        (
            f"rediss://cache.example.test?ssl_ca_certs=/ca.pem&Password={SECRET}&db=1",
            "rediss://cache.example.test?ssl_ca_certs=/ca.pem",
        ),
        (f"unix:///run/valkey.sock?db=2&password={SECRET}", "unix:///run/valkey.sock?db=2"),
        (
            f"redis://loupe:{SECRET}@cache.example.test/0?password={SECRET}",
            "redis://loupe@cache.example.test/0",
        ),
        ("redis://loupe@cache.example.test:6379/0", "redis://loupe@cache.example.test:6379/0"),
        # An @ among the options after a ':' reads as the end of a password: when in doubt,
        # more is removed, never less (the URL must then be entered again).
        ("redis://cache.example.test:6379/0?client_name=a@b", "redis://cache.example.test@b"),
        ("redis://cache.example.test/0?client_name=a@b", "redis://cache.example.test/0?client_name=a@b"),
        # redis-py decodes option names: a password option spelled with percent escapes.
        (f"rediss://cache.example.test:6380/0?pass%77ord={SECRET}", "rediss://cache.example.test:6380/0"),
        (f"redis://cache.example.test/0?db=2&%70assword={SECRET}", "redis://cache.example.test/0?db=2"),
        ("", ""),
    ],
)
def test_a_redis_password_of_any_shape_is_never_saved(url: str, saved: str) -> None:
    path = save_settings(Settings(redis_url=url))
    text = path.read_text(encoding="utf-8")
    for part in (SECRET, "pa/ss", "cr?t", "p@ss"):
        assert part not in text
    assert load_settings().redis_url == saved


@given(
    # A password that itself holds "password=" cannot be told from the option; any other can.
    password=st.text(min_size=1).filter(lambda p: "password=" not in p.lower()),
    user=st.from_regex(r"[a-z]{0,8}", fullmatch=True),
)
def test_no_password_of_any_characters_survives_in_userinfo_or_query(password: str, user: str) -> None:
    named = f"{user}@" if user else ""
    assert (
        without_password(f"rediss://{user}:{password}@cache.example.test:6380/0")
        == f"rediss://{named}cache.example.test:6380/0"
    )
    for options, kept in (("", ""), ("db=1&", "?db=1")):
        url = f"redis://cache.example.test/0?{options}password={password}&ssl=true"
        assert without_password(url) == f"redis://cache.example.test/0{kept}"


# -- writing -------------------------------------------------------------------------------


def test_two_writers_at_once_never_mix_or_fail() -> None:
    """Two savers (the window and a command, say) race: each write is whole, none fails, and no
    temporary file is left (one fixed ``settings.tmp`` made one of them fail or mixed them)."""
    errors: list[BaseException] = []

    def save_many(model: str) -> None:
        try:
            for _ in range(100):
                save_settings(Settings(model=model, recent_files=[model] * 8))
        except BaseException as exc:
            errors.append(exc)

    savers = [threading.Thread(target=save_many, args=(f"/models/{name}",)) for name in "ab"]
    for saver in savers:
        saver.start()
    for saver in savers:
        saver.join()
    assert errors == []
    loaded = load_settings()
    assert loaded.model in ("/models/a", "/models/b") and loaded.recent_files == [loaded.model] * 8
    path = settings_path()
    assert [p.name for p in path.parent.iterdir() if "settings" in p.name] == ["settings.json"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
