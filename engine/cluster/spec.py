"""What a cluster job computes: the dataset, model, layer and map, as plain JSON.

The desktop writes a :class:`ClusterJob` into the job's uploaded folder (``job.json``) and the
driver on the cluster reads it back with :meth:`ClusterJob.from_json`, which checks every field:
the file crosses machines, so it is treated as input, not trusted. Secrets never go here
(:mod:`engine.cluster.secrets`): the Redis URL is stored without its password.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.errors import BadInputError
from engine.model.models import PRECISIONS

JOB_FILE = "job.json"
TEXT_COLUMN = "__loupe_text"  # the text column's name inside the pipeline, whatever the file calls it
SPEC_VERSION = 1
DEFAULT_BATCH_ROWS = 256  # rows per Ray Data batch: what one actor embeds and writes at a time
# On a GPU the model's own batches grow with it: an H200 embeds 15,619 texts/s at 256 and
# 17,857/s at 512 (tests/bench/results/gpu_check_h200.txt); 1,024 keeps it fed between batches.
GPU_BATCH_ROWS = 1_024
MAX_BATCH_ROWS = 65_536
POOLINGS = ("mean", "cls", "last", "max")  # loupe's --pooling choices


@dataclass(frozen=True)
class ClusterJob:
    """One submission: embed every row of ``path`` on the cluster, then fit its map there."""

    path: str  # as the cluster's nodes see it: a shared path or a URI pyarrow reads (s3://…)
    redis_url: str  # the shared cache, without its password
    model: str = "minilm"
    layer: int | str = -1  # a layer index, or "all"
    pooling: str | None = None  # None: what the model folder says
    precision: str = "auto"  # loupe's --precision: the actors and the final map use the same
    text_column: str | None = None
    label_column: str | None = None
    method: str = "umap"
    params: dict[str, str] = field(default_factory=dict)  # --param NAME=VALUE, checked by the engine
    seed: int = 42  # loupe project's default, so a plain `loupe project` finds the job's map
    fit_sample: int | None = None  # --fit-sample N: the map is fitted on a spread sample of N rows
    analyse: bool = False
    actors: int | None = None  # None: one per GPU, else as many as leave a CPU for reading
    batch_rows: int | None = None  # None: DEFAULT_BATCH_ROWS on CPUs, GPU_BATCH_ROWS on GPUs
    loupe_version: str = ""  # the submitting desktop's: the driver refuses to run another version

    def to_json(self) -> str:
        return json.dumps({"version": SPEC_VERSION, **asdict(self)}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClusterJob:
        """The job in ``text``; :class:`BadInputError` in one sentence for anything malformed."""
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise BadInputError(f"The cluster job file is not JSON ({exc}).") from None
        if not isinstance(raw, dict) or type(raw.get("version")) is not int or raw["version"] != SPEC_VERSION:
            raise BadInputError(f"The cluster job file is not a version-{SPEC_VERSION} Loupe job.")
        fields: dict[str, Any] = {
            "path": _text(raw, "path"),
            "redis_url": _text(raw, "redis_url"),
            "model": _text(raw, "model"),
            "layer": _layer(raw.get("layer")),
            "pooling": _pooling(raw.get("pooling")),
            "precision": _precision(raw.get("precision", "auto")),
            "text_column": _optional_text(raw, "text_column"),
            "label_column": _optional_text(raw, "label_column"),
            "method": _text(raw, "method"),
            "params": _params(raw.get("params")),
            "seed": _int(raw, "seed", 0, 2**32 - 1),
            "fit_sample": _optional_int(raw, "fit_sample", 1, 2**31 - 1),
            "analyse": _bool(raw, "analyse"),
            "actors": None if raw.get("actors") is None else _int(raw, "actors", 1, 10_000),
            "batch_rows": None
            if raw.get("batch_rows") is None
            else _int(raw, "batch_rows", 1, MAX_BATCH_ROWS),
            "loupe_version": _text(raw, "loupe_version", empty=True),
        }
        return cls(**fields)


def _text(raw: dict[str, Any], name: str, *, empty: bool = False) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or (not empty and not value):
        raise BadInputError(f"The cluster job's {name} must be a non-empty string.")
    return value


def _optional_text(raw: dict[str, Any], name: str) -> str | None:
    return None if raw.get(name) is None else _text(raw, name)


def _int(raw: dict[str, Any], name: str, low: int, high: int) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInputError(f"The cluster job's {name} must be a whole number from {low} to {high}.")
    return value


def _optional_int(raw: dict[str, Any], name: str, low: int, high: int) -> int | None:
    return None if raw.get(name) is None else _int(raw, name, low, high)


def _bool(raw: dict[str, Any], name: str) -> bool:
    value = raw.get(name)
    if not isinstance(value, bool):
        raise BadInputError(f"The cluster job's {name} must be true or false.")
    return value


def _layer(value: object) -> int | str:
    if value == "all" or (isinstance(value, int) and not isinstance(value, bool) and -1000 < value < 1000):
        return value
    raise BadInputError("The cluster job's layer must be a layer number or 'all'.")


def _precision(value: object) -> str:
    if isinstance(value, str) and value in PRECISIONS:
        return value
    raise BadInputError(f"The cluster job's precision must be one of {', '.join(PRECISIONS)}.")


def _pooling(value: object) -> str | None:
    if value is None or value in POOLINGS:
        return value
    raise BadInputError(f"The cluster job's pooling must be one of {', '.join(POOLINGS)}.")


def _params(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BadInputError("The cluster job's params must map names to strings.")
    return dict(value)
