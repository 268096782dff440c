"""The job's secrets: the Redis password, the cache's team key and a private CA bundle.

Ray has no secret store, and what it does carry is visible: a job's entrypoint and its
``runtime_env`` environment variables are returned by the Jobs API and written to Ray's own logs
(``runtime_env_agent.log``; measured with Ray 2.60). So the submitting machine writes the
secrets into ``secrets.json`` inside the folder it uploads as the job's ``working_dir``: Ray
stores that package in the cluster's object store under a content hash and unpacks it as each
worker's working folder, where :func:`install_secrets` reads it into that process's environment
(``LOUPE_REDIS_PASSWORD``, ``LOUPE_CACHE_KEY``, ``LOUPE_REDIS_CA``), which is exactly what the
cache's own lookup reads. The values never appear in a command line, a log or the job's info.

A cluster that already holds the secrets (a Kubernetes Secret mounted as those variables, see
the README) can be sent none: ``loupe cluster submit --secrets-from-cluster``.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.cache.connect import ca_bundle, split_password
from engine.cache.team_key import find_team_key_material
from engine.errors import BadInputError

SECRETS_FILE = "secrets.json"


@dataclass(frozen=True, repr=False)
class JobSecrets:
    """What the workers need to use the shared cache as this machine does."""

    redis_password: str | None = None
    team_key: bytes | None = None
    redis_ca_pem: str | None = None  # not secret, but the workers cannot read this machine's files

    def __repr__(self) -> str:  # never the values, even in a traceback's locals
        return f"JobSecrets(password={self.redis_password is not None}, team_key={self.team_key is not None})"

    @property
    def empty(self) -> bool:
        return self.redis_password is None and self.team_key is None and self.redis_ca_pem is None


def gather_secrets(redis_url: str) -> tuple[str, JobSecrets]:
    """``redis_url`` without its password, and this machine's secrets for that cache."""
    clean_url, password = split_password(redis_url)
    found_key = find_team_key_material(shared=True)
    ca_pem = None
    named_ca = ca_bundle() if clean_url.startswith("rediss://") else None
    if named_ca is not None:
        try:
            ca_pem = Path(named_ca).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInputError(
                f"The CA bundle {named_ca} (LOUPE_REDIS_CA) cannot be read as text ({type(exc).__name__})."
            ) from None
    return clean_url, JobSecrets(password, None if found_key is None else found_key[0], ca_pem)


def write_secrets(folder: Path, secrets: JobSecrets) -> None:
    """``folder/secrets.json``, readable by its owner only; nothing is written for no secrets."""
    if secrets.empty:
        return
    fields = {
        "redis_password": secrets.redis_password,
        "team_key": None if secrets.team_key is None else base64.b64encode(secrets.team_key).decode("ascii"),
        "redis_ca_pem": secrets.redis_ca_pem,
    }
    target = folder / SECRETS_FILE
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(fields, handle)


def read_secrets(folder: Path) -> JobSecrets:
    """The secrets in ``folder`` (none when there is no file); BadInputError if malformed."""
    path = folder / SECRETS_FILE
    if not path.is_file():
        return JobSecrets()
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
        password, key, ca_pem = fields["redis_password"], fields["team_key"], fields["redis_ca_pem"]
        if not all(value is None or isinstance(value, str) for value in (password, key, ca_pem)):
            raise TypeError("a value is not a string")
        return JobSecrets(password, None if key is None else base64.b64decode(key, validate=True), ca_pem)
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadInputError(f"The job's secrets file cannot be read ({type(exc).__name__}).") from None


def install_secrets(folder: Path | None = None) -> JobSecrets:
    """Put the job's secrets into this process's environment, where the cache looks for them.

    Runs in the driver and in every actor (their working folder is the uploaded one). Secrets
    the job did not send leave the cluster's own configuration in place.
    """
    secrets = read_secrets(Path.cwd() if folder is None else folder)
    if secrets.redis_password is not None:
        os.environ["LOUPE_REDIS_PASSWORD"] = secrets.redis_password
    if secrets.team_key is not None:
        os.environ["LOUPE_CACHE_KEY"] = os.fsdecode(secrets.team_key)
        os.environ.pop("LOUPE_CACHE_KEY_FILE", None)
    if secrets.redis_ca_pem is not None:
        descriptor, name = tempfile.mkstemp(prefix="loupe-ca-", suffix=".pem")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.redis_ca_pem)
        os.environ["LOUPE_REDIS_CA"] = name
    return secrets
