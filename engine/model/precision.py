"""Which precision embeddings are computed in: ``auto``, ``fp32``, ``bf16`` or ``fp16``.

``auto`` picks the hardware's native low precision (bf16 on a CPU with AMX or AVX512-BF16
units, fp16 on CUDA, then bf16 where the GPU has it, fp16 on MPS) only where the model agrees
with float32 on :data:`PROBE_TEXTS` to a cosine of at least :data:`AGREEMENT`; otherwise fp32.
The check embeds the probe texts twice when a model is first loaded in auto mode; its verdict is
remembered in ``precision-checks.json`` in Loupe's cache folder (JSON, written atomically),
keyed by the model's identity, the device, the precision and torch's version, so it costs once
per machine, not once per process.

On the CPU a low precision runs the float32 weights under ``torch.autocast``: the matrix
products run in bf16 on the CPU's matrix units while layer norms, softmax and pooling stay in
float32 (lowest cosine to float32 0.99998 for MiniLM on the probe texts). On a GPU the weights
themselves are loaded in the low precision, as sentence-transformers' ``half()`` does.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import BadInputError
from engine.model.inference import embed_texts
from engine.model.models import LoadedModel
from engine.runtime.atomic import write_text_atomic

log = logging.getLogger(__name__)

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
AGREEMENT = 0.9999  # the lowest cosine to float32 that auto accepts
MEMO_NAME = "precision-checks.json"
_MEMO_VERSION = 1  # bumped when the probe texts or the check change: old verdicts are ignored

# Real sentences in the scripts and languages Loupe is used with, short and long, prose and
# code: a precision that keeps these within AGREEMENT of float32 keeps a dataset's rows too.
PROBE_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Return a new list containing all items from the iterable in ascending order.",
    "def mean(values):\n    return sum(values) / len(values) if values else 0.0",
    "Die Stadtbibliothek bleibt wegen Renovierungsarbeiten bis Ende März geschlossen.",
    "Le gouvernement a annoncé une réforme des retraites qui entrera en vigueur l'an prochain.",
    "¿Dónde está la estación de tren más cercana? Necesito llegar a Madrid antes de las ocho.",
    "O tempo em Lisboa vai continuar quente e seco durante o fim de semana.",
    "Il museo è aperto tutti i giorni tranne il lunedì, dalle nove alle diciannove.",
    "Москва — столица России и крупнейший по численности населения город страны.",
    "東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。",
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "서울은 대한민국의 수도이며 가장 큰 도시이다.",
    "القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها.",
    "दिल्ली भारत की राजधानी है और यह यमुना नदी के किनारे बसी है।",
    "Η Αθήνα είναι η πρωτεύουσα και η μεγαλύτερη πόλη της Ελλάδας.",
    "İstanbul, Türkiye'nin en kalabalık şehri ve ekonomik merkezidir.",
    "ok",
    "Thanks!",
    "ERROR 2026-11-30 12:04:55 connection refused by upstream host 10.0.0.7:5432, retrying in 5 s",
    "Photosynthesis converts light energy into chemical energy that plants store as glucose, "
    "releasing oxygen as a by-product; it takes place mainly in the chloroplasts of leaf cells, "
    "where chlorophyll absorbs red and blue light and reflects green.",
    "SELECT name, count(*) FROM orders GROUP BY name HAVING count(*) > 10 ORDER BY 2 DESC;",
    "Ich habe das Paket gestern bekommen, aber die Verpackung war leider beschädigt.",
    "La película fue aburrida al principio, pero el final me sorprendió muchísimo.",
    "Этот ресторан мне очень понравился: вкусная еда и вежливый персонал.",
)


def cpu_has_bf16_units() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX512-BF16), as torch's own CPU
    feature checks see it (cpuinfo, on every platform, without reading /proc); an older torch
    without those checks means fp32."""
    import torch

    checks = [
        getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    ]
    return any(bool(check()) for check in checks if callable(check))


def auto_candidates(device: str) -> list[str]:
    """The low precisions auto tries on ``device``, best first (dtype names)."""
    import torch

    if device == "cpu":
        return ["bfloat16"] if cpu_has_bf16_units() else []
    if device == "cuda":
        return ["float16", "bfloat16"] if torch.cuda.is_bf16_supported() else ["float16"]
    if device == "mps":
        return ["float16"]
    return []


def explicit_precision(requested: str, device: str) -> str:
    """The dtype name for an explicit ``fp32``/``bf16``/``fp16`` on ``device``.

    bf16 on a CPU without bf16 units works (emulated, slower than fp32) with a warning; fp16 on
    the CPU is refused: it has no fp16 matrix units worth using and its range is narrower.
    """
    if requested not in DTYPES:
        raise BadInputError(f"Unknown precision {requested!r}: use auto, fp32, bf16 or fp16.")
    if requested == "fp16" and device == "cpu":
        raise BadInputError("fp16 runs only on a GPU: on the CPU use --precision bf16 or fp32.")
    if requested == "bf16" and device == "cpu" and not cpu_has_bf16_units():
        log.warning("this CPU has no bf16 units (AMX or AVX512-BF16): bf16 is emulated and slower than fp32")
    return DTYPES[requested]


def device_kind(device: str) -> str:
    """The device as a verdict's key: the CPU's dispatch level or the GPU's name."""
    import torch

    if device == "cpu":
        return f"cpu {torch.backends.cpu.get_cpu_capability()}"
    if device == "cuda":
        return f"cuda {torch.cuda.get_device_name()}"
    return device


def memo_key(model_identity: str, device: str, dtype: str) -> str:
    """A verdict's key: the model, the device kind, the precision and torch's version."""
    import torch

    kind = device_kind(device)
    return f"v{_MEMO_VERSION}|{model_identity}|{kind}|{dtype}|torch {torch.__version__}"


def remembered_precision(model_identity: str, device: str, requested: str) -> str | None:
    """The dtype ``requested`` means for a model on ``device`` if known without loading it
    (None: auto has not checked this model on this machine yet)."""
    if requested != "auto":
        return explicit_precision(requested, device)
    memo = read_memo(_memo_path())
    for dtype in auto_candidates(device):
        lowest = stored_lowest(memo, memo_key(model_identity, device, dtype))
        if lowest is None:
            return None
        if lowest >= AGREEMENT:
            return dtype
    return "float32"


def stored_lowest(memo: dict[str, Any], key: str) -> float | None:
    """The lowest cosine a verdict in ``memo`` records (None: none, or a malformed one)."""
    verdict = memo.get(key)
    if isinstance(verdict, dict) and isinstance(verdict.get("lowest_cosine"), float):
        return float(verdict["lowest_cosine"])
    return None


_check_lock = threading.Lock()


def choose_precision(model: LoadedModel, requested: str) -> str:
    """The dtype name ``model`` computes embeddings in for ``requested`` (auto runs the check)."""
    if requested != "auto":
        return explicit_precision(requested, model.device)
    with _check_lock:  # two engines loading at once check once
        memo_path = _memo_path()
        memo = read_memo(memo_path)
        for dtype in auto_candidates(model.device):
            key = memo_key(model.spec.identity, model.device, dtype)
            lowest = stored_lowest(memo, key)
            if lowest is None:
                lowest = agreement(model, dtype)
                memo[key] = {"lowest_cosine": lowest, "texts": len(PROBE_TEXTS)}
                _write_memo(memo_path, memo)
                log.info(
                    "precision check: %s in %s agrees with float32 to a lowest cosine of %.6f on %d"
                    " probe texts (needs %s): %s",
                    model.spec.name,
                    dtype,
                    lowest,
                    len(PROBE_TEXTS),
                    AGREEMENT,
                    "used" if lowest >= AGREEMENT else "not used",
                )
            if lowest >= AGREEMENT:
                log.info("precision auto: %s on %s computes in %s", model.spec.name, model.device, dtype)
                return dtype
        log.info("precision auto: %s on %s computes in float32", model.spec.name, model.device)
        return "float32"


def agreement(model: LoadedModel, dtype: str) -> float:
    """The lowest cosine between the probe texts' embeddings in float32 and in ``dtype``."""
    exact = embed_texts(replace(model, precision="float32"), list(PROBE_TEXTS)).vectors
    low = embed_texts(replace(model, precision=dtype), list(PROBE_TEXTS)).vectors
    return lowest_cosine(exact, low)


def lowest_cosine(a: Any, b: Any) -> float:
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    return float(np.min(np.sum(a64 * b64, axis=1) / np.maximum(norms, 1e-30)))


def _memo_path() -> Path:
    from engine.runtime.paths import cache_dir

    return cache_dir() / MEMO_NAME


def read_memo(path: Path) -> dict[str, Any]:
    """The stored verdicts, or none for a missing, unreadable or malformed file (checked again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("ignoring unreadable %s (%s); it will be rewritten", path, type(exc).__name__)
        return {}
    return data if isinstance(data, dict) else {}


def _write_memo(path: Path, memo: dict[str, Any]) -> None:
    try:
        write_text_atomic(path, json.dumps(memo, indent=1, sort_keys=True))
    except OSError as exc:  # a read-only cache: the check runs again next time
        log.warning("could not save the precision check to %s (%s)", path, exc)
