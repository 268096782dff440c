"""User settings: a typed, versioned schema in one JSON file, read and written only here.

The file is ``settings.json`` in the per-user config directory. Every load migrates older
versions forward, ignores keys it does not know and replaces values of the wrong type with
defaults, so a hand-edited or old file never stops Loupe from starting.

Secrets are never stored: a Redis URL is saved without its password (give the password with
``LOUPE_REDIS_PASSWORD`` or the system keyring instead).

Version history: 1 held the model, device, cache and window; 2 added the embedding recipe
(pooling, layer), the default projection (method, parameters, seed) and the theme; 3 moved the
window's geometry and dock layout out (Qt's bytes belong to the desktop, which keeps them in its
own file: ``desktop/window/layout_store.py``, which takes over an older file's once, through
:func:`stored_window_layout`). ``cluster_address`` came later in version 3: a file without it
reads as "no address yet", so it needed no new version.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args
from urllib.parse import unquote

from engine.cache.store import Cache
from engine.errors import BadInputError
from engine.maps.projection import METHODS, PARAMETERS, ProjectionParams, Value, param_spec
from engine.model.models import PRECISIONS, Pooling
from engine.runtime.atomic import write_text_atomic
from engine.runtime.paths import config_dir

log = logging.getLogger(__name__)
SCHEMA_VERSION = 3
RECENT_FILES = 8
THEMES = ("system", "light", "dark")
POOLINGS: tuple[str, ...] = ("", *get_args(Pooling))  # "": the model's own
DEVICES = ("auto", "cpu", "cuda", "mps")


def _umap_defaults() -> dict[str, object]:
    return {name: spec.default for name, spec in PARAMETERS["umap"].items()}


@dataclass(frozen=True)
class Settings:
    """Everything Loupe remembers between runs (version 3)."""

    model: str = "minilm"
    device: str = "auto"
    precision: str = "auto"  # one of PRECISIONS; a file without it reads as auto
    redis_url: str = ""  # empty: the embedded server
    cache_maxmemory: str = "1gb"
    gelf_url: str = ""  # empty: no GELF sink (LOUPE_GELF_URL overrides)
    recent_files: list[str] = field(default_factory=list)  # newest first, at most RECENT_FILES
    pooling: str = ""  # one of POOLINGS; "": the model's own
    layer: int = -1  # the hidden state embedded; -1: the last layer
    projection_method: str = "umap"  # the map a newly opened dataset gets
    projection_params: dict[str, object] = field(default_factory=_umap_defaults)  # checked on use
    projection_seed: int = 42
    theme: str = "system"  # one of THEMES
    cluster_address: str = ""  # File ▸ Send to cluster…'s last address (never a token)

    def with_recent(self, path: str) -> Settings:
        """These settings with ``path`` first among the recent files."""
        recent = [path, *(p for p in self.recent_files if p != path)][:RECENT_FILES]
        return replace(self, recent_files=recent)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings() -> Settings:
    """The saved settings, or the defaults when there is no usable file."""
    path = settings_path()
    if not path.is_file():
        return Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("settings file %s is unreadable (%s); using defaults", path, exc)
        return Settings()
    except RecursionError:  # JSON nested deeper than Python's stack
        log.warning("settings file %s is nested too deeply to read; using defaults", path)
        return Settings()
    if not isinstance(data, dict):
        log.warning("settings file %s holds no settings object; using defaults", path)
        return Settings()
    values = _migrate(data)
    if values is None:
        return Settings()
    defaults = Settings()
    known = {}
    for spec in fields(Settings):
        default = getattr(defaults, spec.name)
        value = values.get(spec.name, default)
        # bool is an int to isinstance, but never a layer or a seed.
        fits = isinstance(value, type(default)) and not (
            isinstance(value, bool) and not isinstance(default, bool)
        )
        known[spec.name] = value if fits else default
    known["recent_files"] = [entry for entry in known["recent_files"] if isinstance(entry, str)]
    return _checked(Settings(**known))


def _checked(settings: Settings) -> Settings:
    """``settings`` with any value outside its allowed set replaced by its default (logged)."""
    defaults = Settings()
    allowed: dict[str, tuple[str, ...]] = {
        "theme": THEMES,
        "pooling": POOLINGS,
        "device": DEVICES,
        "precision": PRECISIONS,
        "projection_method": METHODS,
    }
    changes: dict[str, Any] = {}
    for name, choices in allowed.items():
        if getattr(settings, name) not in choices:
            value, default = getattr(settings, name), getattr(defaults, name)
            log.warning(
                "settings: %s %r is not one of %s; using %r", name, value, ", ".join(choices), default
            )
            changes[name] = default
    if settings.layer < -1:
        changes["layer"] = defaults.layer
    return replace(settings, **changes) if changes else settings


def default_projection(settings: Settings) -> ProjectionParams:
    """The projection a newly opened dataset gets, from the settings, checked by the engine's parser.

    A stored parameter the engine rejects (hand-edited, or from a Loupe whose parameters
    differed) is dropped with a log warning, so its default is used; parameters that are fine
    one by one but not together (min_dist > spread), or a bad seed, give the method's defaults.
    Never raises.
    """
    method = settings.projection_method if settings.projection_method in METHODS else "umap"
    options: dict[str, Value] = {}
    for name, raw in settings.projection_params.items():
        try:
            options[name] = param_spec(method, name).parse(name, raw)
        except BadInputError as exc:
            log.warning("settings: ignoring the stored projection parameter (%s)", exc)
    try:
        return without_defaults(ProjectionParams.from_options(method, options, seed=settings.projection_seed))
    except BadInputError as exc:
        log.warning("settings: the stored projection is not usable (%s); using %s's defaults", exc, method)
    try:
        return ProjectionParams.from_options(method, {}, seed=settings.projection_seed)
    except BadInputError:  # the seed itself
        return ProjectionParams(method=method)


def without_defaults(params: ProjectionParams) -> ProjectionParams:
    """``params`` holding only the options that differ from their defaults: the same map, and
    equal to any other ``ProjectionParams`` for that map (a form or a file lists every option)."""
    specs = PARAMETERS[params.method]
    return replace(params, options=tuple((k, v) for k, v in params.options if v != specs[k].default))


def save_settings(settings: Settings) -> Path:
    """Write the settings atomically (mode 0600), the Redis password removed from the URL.

    The file is written to a unique temporary name beside it and renamed into place, so two
    processes saving at once never mix their files (the last rename wins).
    """
    data = {"version": SCHEMA_VERSION, **asdict(settings)}
    data["redis_url"] = without_password(settings.redis_url)
    path = settings_path()
    write_text_atomic(path, json.dumps(data, indent=2), mode=0o600)
    return path


# An option among a URL's options: its name as written (redis-py reads ``password`` from the query
# of any Redis URL, and decodes the name first, so ``pass%77ord`` is a password too).
_QUERY_OPTION = re.compile(r"[?&;]([^=&;#]*)=")
_PLAIN_USER = re.compile(r"[\w.~%+-]+")


def without_password(url: str) -> str:
    """``url`` with any password removed, whatever its shape; the user name is kept when plain.

    A password may hold any character, so the URL is not parsed as a well-formed one would be
    (``urlsplit`` ends the host at the ``/`` of ``user:pa/ss@host``): a ``password=`` option
    and everything after it goes (its end cannot be known), then everything up to the last
    ``@`` that holds a ``:``. When in doubt, more is removed, never less.
    """
    for match in _QUERY_OPTION.finditer(url):
        if unquote(match.group(1)).lower() == "password":
            url = url[: match.start()]
            break
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    if ":" not in userinfo:  # a user name alone holds no secret
        return url
    user = userinfo.partition(":")[0]
    keep = f"{user}@" if _PLAIN_USER.fullmatch(user) else ""
    return f"{scheme}://{keep}{host}"


def _migrate(data: dict[str, Any]) -> dict[str, Any] | None:
    """Bring a stored dictionary of any known version up to :data:`SCHEMA_VERSION`, one step per
    version; None (logged) when its version is not one any Loupe wrote."""
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        log.warning("settings version %.40r is not one any Loupe wrote; using defaults", version)
        return None
    if version > SCHEMA_VERSION:
        log.warning("settings version %r is newer than this Loupe knows; reading what it can", version)
        return data
    steps = {1: _v1_to_v2, 2: _v2_to_v3}
    while version < SCHEMA_VERSION:
        data = steps[version](data)
        version = data["version"]
    return data


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds the embedding recipe, the default projection and the theme.

    A version 1 file's maps were all UMAP with its defaults and seed 42 of the last layer with the
    model's own pooling, which is what these values say, so a migrated user sees the same maps.
    """
    return {
        **data,
        "version": 2,
        "pooling": "",
        "layer": -1,
        "projection_method": "umap",
        "projection_params": _umap_defaults(),
        "projection_seed": 42,
        "theme": "system",
    }


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 no longer holds the window's layout (see :func:`stored_window_layout`)."""
    return {
        **{key: value for key, value in data.items() if key not in WINDOW_FIELDS},
        "version": 3,
    }


WINDOW_FIELDS = ("window_geometry", "window_state")


def stored_window_layout() -> tuple[str, str]:
    """The window's geometry and state (Qt's bytes, base64) that a settings file of version 1
    or 2 held, ``("", "")`` when it holds none or cannot be read.

    For the desktop's layout store, which takes them over the first time it finds no file of its
    own; the settings never write them again. Never raises.
    """
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    values = [data.get(name, "") for name in WINDOW_FIELDS]
    geometry, state = (value if isinstance(value, str) else "" for value in values)
    return geometry, state


def configured_redis_url(redis_url: str | None = None, no_cache: bool = False) -> str:
    """The shared cache's URL that :func:`open_configured_cache` opens ("" for the embedded
    server or no cache): ``--redis``, else ``LOUPE_REDIS_URL``, else the saved URL. It may hold
    a password (the first two): never show or save it as it is."""
    if no_cache:
        return ""
    return redis_url or os.environ.get("LOUPE_REDIS_URL") or load_settings().redis_url


def open_configured_cache(redis_url: str | None = None, no_cache: bool = False) -> Cache:
    """The cache the user configured: ``--redis``, else ``LOUPE_REDIS_URL``, else the saved URL;
    the embedded server with the saved size otherwise (see :func:`engine.cache.connect.open_cache`)."""
    from engine.cache.connect import open_cache

    settings = load_settings()
    return open_cache(
        redis_url, no_cache, saved_url=settings.redis_url, saved_maxmemory=settings.cache_maxmemory
    )
