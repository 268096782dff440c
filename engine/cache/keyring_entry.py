"""One secret from the operating system's keyring, when the optional ``keyring`` package is there.

``keyring`` is never a dependency: not installed, without a usable backend, locked, or failing in
any other way, the keyring counts as holding nothing. It is imported on the first lookup, not at
module level, so a process that never needs a secret never loads it.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)


def keyring_secret(service: str, user: str) -> str | None:
    """The keyring's non-empty entry for (``service``, ``user``), or None; never raises."""
    try:
        keyring = importlib.import_module("keyring")
        found = keyring.get_password(service, user)
    except Exception as exc:  # ImportError, NoKeyringError, a D-Bus failure, …: all mean "none"
        log.debug("nothing from the keyring for service %r (%s)", service, type(exc).__name__)
        return None
    return found if isinstance(found, str) and found else None
