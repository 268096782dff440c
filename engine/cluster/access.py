"""Who may submit where: the cluster's address and Ray's token, checked before anything is sent.

Ray runs any code a job asks for, and an unauthenticated Jobs API runs it for anyone who can
reach the port (measured: a plain ``POST /api/jobs/`` ran a shell command). Loupe therefore
submits only with a token, found as Ray itself finds it (``RAY_AUTH_TOKEN``, then the file
``RAY_AUTH_TOKEN_PATH`` names, then ``~/.ray/auth_token``; the window also looks in the system
keyring), and only over ``https://`` unless the cluster is on this machine, since Ray's token
crosses the network as a plain ``Authorization: Bearer`` header. ``--insecure`` lifts both
refusals for a cluster the user knows to be private.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from engine.cache.connect import is_loopback
from engine.cache.keyring_entry import keyring_secret
from engine.errors import LoupeError

KEYRING_SERVICE = "loupe-ray"  # the user is the cluster's address, as the window saves it
DEFAULT_DASHBOARD_PORT = 8265
GIVEN_BY_CALLER = "the caller"  # how messages name a token passed in rather than looked up


class ClusterAccessError(LoupeError):
    """A submission refused here, or by the cluster (HTTP 401/403): one sentence, exit 2."""


class ClusterError(LoupeError):
    """The cluster could not be reached, or a job could not be found or submitted."""


@dataclass(frozen=True, repr=False)
class ClusterAccess:
    """A checked address and the token to send there (None only with ``--insecure``)."""

    address: str  # http(s)://host:port, the Jobs REST API (the Ray dashboard's port)
    token: str | None
    token_source: str

    def __repr__(self) -> str:
        return f"ClusterAccess({self.address}, token from {self.token_source})"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def check_access(
    address: str, *, token: str | None = None, token_source: str = GIVEN_BY_CALLER, insecure: bool = False
) -> ClusterAccess:
    """The address as Loupe will use it and the token found for it, or ClusterAccessError.

    ``token`` is one given by the caller (the window's keyring entry or field, named by
    ``token_source`` in messages); without it the token is looked up as Ray looks it up.
    """
    url = normalised_address(address)
    host = urlsplit(url).hostname or ""
    if url.startswith("http://") and not is_loopback(host) and not insecure:
        raise ClusterAccessError(
            f"The cluster at {url} is reached over plain http, where its token can be read on the "
            "network; put TLS in front of it and use https://, or add --insecure if this network is private."
        )
    source = token_source
    if not token:
        token, source = find_token(url)
    if not token and not insecure:
        raise ClusterAccessError(
            "No Ray token found (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token): Loupe does "
            "not submit to a cluster without token authentication, where anyone can run code; add "
            "--insecure to do it anyway."
        )
    return ClusterAccess(url, token or None, source if token else "nowhere")


def normalised_address(address: str) -> str:
    """``http(s)://host:port`` for what a user typed: ``host:port`` means http://, a missing port
    8265 (Ray's dashboard), or 443 after https:// (TLS in front of it)."""
    text = address.strip().rstrip("/")
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ClusterAccessError(
            f"The cluster address {address!r} is not host:port or http(s)://host:port."
        ) from None
    if "@" in parts.netloc:  # never echoed: what precedes the @ may be a token
        raise ClusterAccessError(
            "The cluster address holds a user or token before '@': give the token in RAY_AUTH_TOKEN "
            "(or RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token) and the address as http(s)://HOST:PORT."
        )
    if parts.scheme == "ray":
        raise ClusterAccessError(
            "Loupe submits through Ray's Jobs REST API, not Ray Client: give the dashboard's address, "
            f"http(s)://HOST:{DEFAULT_DASHBOARD_PORT}."
        )
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise ClusterAccessError(f"The cluster address {address!r} is not host:port or http(s)://host:port.")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    # https is TLS in front of the dashboard (an Ingress, a proxy), which serves on 443 unless told.
    return f"{parts.scheme}://{host}:{port or (443 if parts.scheme == 'https' else DEFAULT_DASHBOARD_PORT)}"


def find_token(address: str) -> tuple[str | None, str]:
    """(token, where it came from) as Ray looks for it, then the keyring entry for ``address``."""
    from_environment = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if from_environment:
        return from_environment, "RAY_AUTH_TOKEN"
    named = os.environ.get("RAY_AUTH_TOKEN_PATH")
    candidates = [(Path(named).expanduser(), "RAY_AUTH_TOKEN_PATH")] if named else []
    candidates.append((Path.home() / ".ray" / "auth_token", "~/.ray/auth_token"))
    for path, source in candidates:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            if source == "RAY_AUTH_TOKEN_PATH":
                raise ClusterAccessError(f"RAY_AUTH_TOKEN_PATH names {path}, which does not exist.") from None
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise ClusterAccessError(
                f"The Ray token file {path} cannot be read ({type(exc).__name__})."
            ) from None
        if text:
            return text, source
    from_keyring = keyring_secret(KEYRING_SERVICE, address)
    if from_keyring:
        return from_keyring.strip(), "the system keyring"
    return None, "nowhere"
