"""The cached pipeline: dataset → per-row embeddings → 2-D projection, and attention per row.

:class:`Engine` holds the cache and (lazily) the model. Every method is a pure function of
its inputs plus the cache, so it can run on any job lane; the model is loaded on first need
only, which means a fully cached run never imports torch.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.cache.keys import cache_key, text_key_factory
from engine.cache.store import Cache, as_float32
from engine.errors import BadInputError
from engine.inference import AttentionMaps, attention_for_text, embed_texts
from engine.jobs import CancelToken, Report, silent_report
from engine.models import DEFAULT_MODEL, LoadedModel, ModelSpec, load_model, resolve_model
from engine.projection import ProjectionParams, project

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddingRun:
    """Embeddings for a list of texts, in order, and where they came from."""

    vectors: npt.NDArray[np.float32]
    computed: int
    from_cache: int
    truncated: int


class Engine:
    """The cache-aware pipeline used by the CLI, the desktop and tests alike."""

    def __init__(self, cache: Cache, model: str = DEFAULT_MODEL, device: str = "auto") -> None:
        self.cache = cache
        self.model_name = model
        self.device = device
        self._spec: ModelSpec | None = None
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()

    @property
    def spec(self) -> ModelSpec:
        with self._lock:
            if self._spec is None:
                self._spec = resolve_model(self.model_name)
            return self._spec

    @property
    def model_loaded(self) -> bool:
        return self._loaded is not None

    def loaded_model(self) -> LoadedModel:
        """The model, loaded on first call (thread-safe; later callers wait for the first)."""
        spec = self.spec
        with self._lock:
            if self._loaded is None:
                log.info("loading model %s", spec.identity)
                self._loaded = load_model(spec, self.device)
            return self._loaded

    def embeddings(
        self,
        texts: Sequence[str],
        *,
        layer: int = -1,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> EmbeddingRun:
        """Embeddings of ``texts``, computing only rows missing from the cache.

        Computed rows are written to the cache batch by batch, so a job that is cancelled or
        killed keeps what it finished and a rerun resumes from there.
        """
        if not texts:
            raise BadInputError("There are no texts to embed.")
        key_for = text_key_factory("emb", {**self.spec.cache_context(), "layer": layer})
        keys = [key_for(text) for text in texts]
        cached = self.cache.get_arrays(keys)
        width = self.spec.width
        vectors: list[npt.NDArray[np.float32] | None] = []
        for key, hit in zip(keys, cached, strict=True):
            vector = None if hit is None else as_float32(hit)
            if vector is not None and (vector.ndim != 1 or (width is not None and vector.shape[0] != width)):
                log.warning("cache value %s has shape %s; recomputing", key, vector.shape)
                vector = None
            vectors.append(vector)
        missing = [i for i, vector in enumerate(vectors) if vector is None]
        done_before = len(texts) - len(missing)
        report(done_before, len(texts), "Embedding")
        truncated = 0
        if missing:
            report(done_before, len(texts), "Loading the model")
            model = self.loaded_model()
            model.embedding_model()
            chunk = 256  # rows written to the cache together: small enough to lose little on a crash
            for start in range(0, len(missing), chunk):
                rows = missing[start : start + chunk]

                def chunk_report(done: int, total: int, message: str = "", offset: int = start) -> None:
                    report(done_before + offset + done, len(texts), message)

                result = embed_texts(
                    model, [texts[i] for i in rows], layer=layer, token=token, report=chunk_report
                )
                truncated += result.truncated
                for row, vector in zip(rows, result.vectors, strict=True):
                    vectors[row] = vector
                self.cache.put_arrays(
                    "emb", [(keys[row], vector) for row, vector in zip(rows, result.vectors, strict=True)]
                )
        matrix = np.stack([v for v in vectors if v is not None]).astype(np.float32, copy=False)
        return EmbeddingRun(matrix, computed=len(missing), from_cache=done_before, truncated=truncated)

    def cached_projection(
        self, vectors: npt.NDArray[np.float32], params: ProjectionParams
    ) -> npt.NDArray[np.float32] | None:
        """The projection if it is in the cache, else None (cheap: no import of umap)."""
        hit = self.cache.get_array(_projection_key(vectors, params))
        return None if hit is None else as_float32(hit)

    def projection(
        self,
        vectors: npt.NDArray[np.float32],
        params: ProjectionParams,
        *,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> npt.NDArray[np.float32]:
        """2-D coordinates for ``vectors``, from the cache or computed and then cached."""
        params.validate()
        cached = self.cached_projection(vectors, params)
        if cached is not None and cached.shape == (vectors.shape[0], 2):
            return cached
        if token is not None:
            token.raise_if_cancelled()
        report(0, 1, f"Projecting ({params.method.upper()})")
        coords = project(vectors, params)
        self.cache.put_array("proj", _projection_key(vectors, params), coords)
        report(1, 1, f"Projecting ({params.method.upper()})")
        return coords

    def attention(self, text: str) -> AttentionMaps:
        """Attention maps for one text; cached quantised (error at most 0.5/255 per value)."""
        key = cache_key("attn", {**self.spec.cache_context(), "text": text})
        hit = self.cache.get_array(key)
        if hit is not None:
            meta = hit.meta
            try:
                maps = AttentionMaps(
                    text=text,
                    tokens=tuple(str(t) for t in meta["tokens"]),
                    offsets=tuple((int(a), int(b)) for a, b in meta["offsets"]),
                    special=tuple(bool(s) for s in meta["special"]),
                    attentions=as_float32(hit),
                )
                n = len(maps.tokens)
                if maps.attentions.ndim != 4 or maps.attentions.shape[2:] != (n, n):
                    raise ValueError("attention shape does not match its tokens")
                if len(maps.offsets) != n or len(maps.special) != n:
                    raise ValueError("token metadata lengths differ")
                return maps
            except (KeyError, TypeError, ValueError):
                log.warning("attention value %s has bad metadata; recomputing", key)
        maps = attention_for_text(self.loaded_model(), text)
        meta = {
            "tokens": list(maps.tokens),
            "offsets": [list(o) for o in maps.offsets],
            "special": list(maps.special),
        }
        self.cache.put_array("attn", key, maps.attentions, codec_name="q8-zstd", meta=meta)
        return maps


def _projection_key(vectors: npt.NDArray[np.float32], params: ProjectionParams) -> str:
    digest = hashlib.blake2b(np.ascontiguousarray(vectors, dtype=np.float32).tobytes(), digest_size=20)
    return cache_key(
        "proj", {"input": digest.hexdigest(), "shape": list(vectors.shape), **params.cache_parts()}
    )
