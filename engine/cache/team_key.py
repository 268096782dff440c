"""The optional team key: a secret shared by the people who share a cache.

With it, every value Loupe writes carries a MAC (keyed BLAKE2b, see :mod:`engine.cache.codec`)
and every value it reads must carry a valid one, so someone who can write to the shared
server but does not hold the key can delete or spoil values (misses) but never make Loupe
use a value of their choosing.

Where it comes from, first found wins:

1. ``LOUPE_CACHE_KEY``: the key itself;
2. ``LOUPE_CACHE_KEY_FILE``: a file holding it;
3. the file ``cache-key`` in Loupe's configuration folder, when it exists;
4. for a shared (remote) cache only, the system keyring (service ``loupe-cache``, user
   ``team-key``), when the optional ``keyring`` package can be imported.

The key is never printed, logged or written to the settings; messages name only its source.
A key that is configured but cannot be read raises :class:`TeamKeyError` rather than
silently running without it, which would accept values anyone can forge.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

from engine.cache.keyring_entry import keyring_secret
from engine.errors import LoupeError

log = logging.getLogger(__name__)
# A service of its own: the Redis password lives under service "loupe", user = the ACL user.
KEYRING_SERVICE = "loupe-cache"
KEYRING_USER = "team-key"
KEY_FILE_NAME = "cache-key"
MIN_KEY_BYTES = 16  # shorter keys are accepted with a warning: guessable keys are no MAC
_DERIVE_PERSON = b"loupe-team-key"


class TeamKeyError(LoupeError):
    """A team key is configured but cannot be used (unreadable or empty file)."""


class TeamKey:
    """The derived secret the codec keys its MAC with, and where the key came from."""

    __slots__ = ("secret", "source")

    def __init__(self, material: bytes, source: str) -> None:
        if not material:
            raise TeamKeyError(f"The cache team key from {source} is empty.")
        # Derived rather than used as given: any length of key text becomes 32 bytes, and the
        # derived secret is useless for anything but Loupe's cache tags.
        self.secret = hashlib.blake2b(material, digest_size=32, person=_DERIVE_PERSON).digest()
        self.source = source
        if len(material) < MIN_KEY_BYTES:
            log.warning(
                "the cache team key from %s is short (%d bytes); use 32 or more random characters",
                source,
                len(material),
            )

    def __repr__(self) -> str:  # never the secret, even in a traceback's locals
        return f"TeamKey(from {self.source})"


def find_team_key(*, shared: bool) -> TeamKey | None:
    """The team key from the first source that has one (see the module docstring), or None.

    ``shared``: the cache is a remote server, the only case where the keyring is asked (an
    embedded cache is private, and a locked keyring may prompt on every start).
    """
    found = find_team_key_material(shared=shared)
    return None if found is None else TeamKey(*found)


def find_team_key_material(*, shared: bool) -> tuple[bytes, str] | None:
    """The team key as configured (its bytes, and where they came from), or None.

    Only a cluster submission needs the key itself, to hand it to its workers as a runtime secret
    (:mod:`engine.cluster.secrets`); everything else uses :func:`find_team_key`.
    """
    # fsencode: the variable's own bytes, even ones that are not valid in the locale's encoding.
    from_environment = os.fsencode(os.environ.get("LOUPE_CACHE_KEY", ""))
    if from_environment.strip():
        return from_environment.strip(), "LOUPE_CACHE_KEY"
    named = os.environ.get("LOUPE_CACHE_KEY_FILE")
    if named:
        return _from_file(Path(named).expanduser(), "LOUPE_CACHE_KEY_FILE")
    from engine.runtime.paths import config_dir

    default = config_dir() / KEY_FILE_NAME
    if default.exists():
        return _from_file(default, "the configuration folder")
    if shared:
        from_keyring = _keyring_key()
        if from_keyring:
            return from_keyring.encode("utf-8", "surrogatepass"), "the system keyring"
    return None


def _from_file(path: Path, named_by: str) -> tuple[bytes, str]:
    source = f"the file {path} ({named_by})"
    try:
        material = path.read_bytes().strip()
        mode = path.stat().st_mode
    except OSError as exc:
        raise TeamKeyError(f"The cache team key file {path} cannot be read: {exc.strerror or exc}.") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the cache team key file %s can be read by other users; chmod 600 it", path)
    if not material:
        raise TeamKeyError(f"The cache team key from {source} is empty.")
    return material, source


def _keyring_key() -> str | None:
    """The keyring's entry (service ``loupe-cache``, user ``team-key``), stripped, or None."""
    found = keyring_secret(KEYRING_SERVICE, KEYRING_USER)
    return found.strip() if found and found.strip() else None
