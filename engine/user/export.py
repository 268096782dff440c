"""What an exported file records and where: the provenance of a map or attention figure
(dataset, model, method, parameters, versions) and the JSON sidecar written beside the file.

The figures and data files themselves are drawn and written by :mod:`engine.user.figures`,
:mod:`engine.user.attention_figures` and :mod:`engine.user.data_files`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.runtime.atomic import write_text_atomic

if TYPE_CHECKING:
    from engine.api.types import EngineIdentity
    from engine.data.datasets import Dataset
    from engine.maps.projection import ProjectionParams


def provenance(
    identity: EngineIdentity | None,
    dataset: Dataset,
    params: ProjectionParams,
    layer: int,
    trustworthiness: float | None = None,
) -> dict[str, Any]:
    """What a figure or data file shows and how it was made (the JSON sidecar's content).

    ``identity`` is what the engine said it computes with (``api.identify(Identify())``), asked
    through the engine's API whichever engine the CLI or the window holds; None for a map of the
    dataset's own vectors (``OpenedDataset.own_vectors``), which no model made.
    """
    from importlib.metadata import version

    import engine as loupe

    record: dict[str, Any] = {
        "loupe": loupe.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": {
            "path": str(Path(dataset.path).resolve()) if dataset.path else None,
            "fingerprint": dataset.fingerprint,
            "rows": len(dataset),
            "text_column": dataset.text_column,
        },
        "model": identity.model_identity if identity is not None else "precomputed vectors",
        "layer": layer,
        "method": params.method,
        "parameters": params.settings(),
        "seed": params.seed,
        "versions": {name: version(name) for name in ("numpy", "scikit-learn", "umap-learn", "matplotlib")},
    }
    if params.fit_sample is not None:  # fitted on a sample, the other rows placed on it
        record["fit_sample"] = params.fit_sample
    if trustworthiness is not None:
        record["trustworthiness"] = trustworthiness
    if identity is not None:
        record["pooling"] = identity.pooling
    return record


def attention_provenance(
    base: Mapping[str, Any], *, view: str, layer: int | None, head: int | None, **fields: Any
) -> dict[str, Any]:
    """``base`` (the dataset and model, from the window) plus what an attention figure shows.

    ``view`` goes in as ``method`` too, replacing a map's projection method, and ``layer`` is
    the attention layer shown (None for rollout and statistics over every layer).
    """
    from importlib.metadata import PackageNotFoundError, version

    versions = dict(base.get("versions", {}))
    for name in ("numpy", "matplotlib", "torch", "transformers"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    record = {**base, "method": f"attention {view}", "view": view, "layer": layer, "head": head, **fields}
    record["versions"] = versions
    record.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return record


def sidecar_path(path: Path) -> Path:
    """Where :func:`write_sidecar` writes the record of the file at ``path``: ``path + ".json"``."""
    return path.with_name(path.name + ".json")


def write_sidecar(path: Path, provenance: Mapping[str, Any]) -> Path:
    """``path + ".json"``: the provenance record of the file at ``path``."""
    sidecar = sidecar_path(path)
    write_text_atomic(sidecar, json.dumps(provenance, indent=2, default=str) + "\n")
    return sidecar
