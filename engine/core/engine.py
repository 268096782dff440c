"""The cached pipeline: dataset → per-row embeddings → 2-D projection, and attention per row.

:class:`Engine` holds the cache and (lazily) the model. Every method is a pure function of
its inputs plus the cache, so it can run on any job lane; the model is loaded on first need
only, which means a fully cached run never imports torch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.cache.codec import Codec, Expected
from engine.cache.decorator import cached
from engine.cache.keys import cache_key, text_key_factory
from engine.cache.store import Cache
from engine.core import cached_values
from engine.core.precision_rules import promise_of, stored_meta, usable_vectors
from engine.core.runs import Clustering, EmbeddingRun, input_id, matrix_digest
from engine.errors import BadInputError
from engine.logs.records import timed
from engine.maps.projection import ProjectionParams, project
from engine.maps.sweep import SweepResult
from engine.model.attention_stats import (
    AttentionStatistics,
    attention_statistics,
    group_digest,
    group_sample,
    statistics_to_array,
)
from engine.model.inference import AttentionMaps, attention_for_text, embed_texts
from engine.model.models import (
    DEFAULT_MODEL,
    LoadedModel,
    ModelSpec,
    Pooling,
    load_model,
    pick_device,
    resolve_model,
)
from engine.model.precision import choose_precision, remembered_precision
from engine.runtime.context import log_context
from engine.runtime.jobs import CancelToken, Report, silent_report

__all__ = ["Engine"]

log = logging.getLogger(__name__)


class Engine:
    """The vector-level, cache-aware computations (texts and vectors in, arrays out).

    Front ends use :class:`engine.core.service.EngineService` (the engine's API), which holds
    the datasets and runs and calls these; benchmarks and ``loupe cache`` may call them directly.
    """

    def __init__(
        self,
        cache: Cache,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        *,
        allow_download: bool = False,
        trust_remote_code: bool = False,
        pooling: Pooling | None = None,
        precision: str = "auto",
    ) -> None:
        """``pooling`` overrides the folder's (part of every key); ``precision``: engine.model.precision."""
        self.cache = cache
        self.requested_precision = precision
        self._resolve_options = {"allow_download": allow_download, "trust_remote_code": trust_remote_code}
        self._pooling = pooling
        # float16 halves what embeddings take in the cache, at a relative error of at most
        # 2**-11 (about 4.9e-4) per component; exact float32 (zstd) is the default.
        self.embedding_codec: Codec = "f16-zstd" if os.environ.get("LOUPE_CACHE_FLOAT16") == "1" else "zstd"
        self.model_name = model
        self.device = device
        self._spec: ModelSpec | None = None
        self._loaded: LoadedModel | None = None
        self._precision_known: str | None = None  # without loading the model (None: not yet)
        self._lock = threading.Lock()

    @property
    def spec(self) -> ModelSpec:
        with self._lock:
            if self._spec is None:
                spec = resolve_model(self.model_name, **self._resolve_options)
                self._spec = spec if self._pooling is None else replace(spec, pooling=self._pooling)
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
                loaded = load_model(spec, self.device)  # then auto checks it (once per machine)
                self._loaded = replace(loaded, precision=choose_precision(loaded, self.requested_precision))
            return self._loaded

    @property
    def precision(self) -> str:
        """The dtype embeddings are computed in; loads the model only where auto has not checked it here."""
        if self._loaded is not None:
            return self._loaded.precision
        spec = self.spec
        with self._lock:  # remembered: _cached_vectors asks once per row
            if self._precision_known is None:
                device = pick_device(self.device)
                self._precision_known = remembered_precision(spec.identity, device, self.requested_precision)
            known = self._precision_known
        return known if known is not None else self.loaded_model().precision

    def run_id(self, keys: Sequence[str]) -> str:
        """The name (for maps and scores) of the matrix of rows ``keys`` in what this engine's
        precision promises (see :meth:`precision_promise`), so a bf16 map is never served for
        float32 vectors; float32 names are as before, so their maps stay warm."""
        promise = self.precision_promise()
        return input_id(keys if promise is None else [f"precision={promise}", *keys])

    def precision_promise(self) -> str | None:
        """What this engine's vectors promise, as its runs' names say it (precision_rules)."""
        return promise_of(self.requested_precision)

    def embeddings(
        self,
        texts: Sequence[str],
        *,
        layer: int = -1,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> EmbeddingRun:
        """Embeddings of ``texts`` at one ``layer``, computing only rows missing from the cache.

        Computed rows are written to the cache after every batch, so a job that is cancelled or
        killed loses at most one batch and a rerun resumes from there.
        """
        index = self.spec.layer_index(layer)
        run = self._logged_embeddings(texts, [index], token, report)
        return replace(run, vectors=run.vectors[:, 0])

    def all_layer_embeddings(
        self, texts: Sequence[str], *, token: CancelToken | None = None, report: Report = silent_report
    ) -> EmbeddingRun:
        """Every layer's embeddings, ``[rows, layers + 1, width]`` (0 = the embedding layer).

        Rows missing any layer are computed in one forward pass that pools every hidden state;
        each layer is cached under the same key a single-layer run uses, so either kind of run
        reuses the other's work.
        """
        layers = self.spec.layers
        if layers is None:
            raise BadInputError(f"{self.spec.name}'s config does not say how many layers it has.")
        return self._logged_embeddings(texts, list(range(layers + 1)), token, report)

    def _logged_embeddings(
        self, texts: Sequence[str], layers: list[int], token: CancelToken | None, report: Report
    ) -> EmbeddingRun:
        if not texts:
            raise BadInputError("There are no texts to embed.")
        shown = layers[0] if len(layers) == 1 else "all"
        with (
            log_context(model=self.spec.identity),
            timed(log, "embeddings ready", rows=len(texts), layer=shown),
        ):
            return self._embeddings(texts, layers, token, report)

    def _embeddings(
        self, texts: Sequence[str], layers: list[int], token: CancelToken | None, report: Report
    ) -> EmbeddingRun:
        """``[rows, len(layers), width]`` for ``layers`` (indices into the hidden states)."""
        keys = [self.row_keys(texts, layer) for layer in layers]  # keys[layer position][row]
        found = [self._cached_vectors(layer_keys) for layer_keys in keys]
        missing = [row for row in range(len(texts)) if any(column[row] is None for column in found)]
        done_before = len(texts) - len(missing)
        report(done_before, len(texts), "Embedding")
        truncated = 0
        if missing:
            report(done_before, len(texts), "Loading the model")
            model = self.loaded_model()
            model.embedding_model()
            if model.spec != self.spec:  # a pooling override: same weights, this engine's recipe
                model = replace(model, spec=self.spec)
            meta = stored_meta(model.precision, self.requested_precision)
            # More than one layer means all of them (0..L), so a layer's position is its index.
            all_layers = len(layers) > 1

            def store(batch: list[int], batch_vectors: npt.NDArray[np.float32]) -> None:
                rows = [missing[i] for i in batch]
                per_layer = batch_vectors if all_layers else batch_vectors[:, None]
                pairs = [
                    (keys[position][row], per_layer[i, position])
                    for position in range(len(layers))
                    for i, row in enumerate(rows)
                ]
                self.cache.set_many("emb", pairs, codec_name=self.embedding_codec, meta=meta)

            def overall(done: int, total: int, message: str = "") -> None:
                report(done_before + done, len(texts), message)

            result = embed_texts(
                model,
                [texts[i] for i in missing],
                layer=layers[0],
                all_layers=all_layers,
                token=token,
                report=overall,
                on_batch=store,
            )
            truncated = result.truncated
            computed = result.vectors if all_layers else result.vectors[:, None]
            for i, row in enumerate(missing):
                for position in range(len(layers)):
                    found[position][row] = computed[i, position]
        matrix = np.stack(
            [np.stack([column[row] for column in found]) for row in range(len(texts))]  # type: ignore[misc]
        ).astype(np.float32, copy=False)
        return EmbeddingRun(
            matrix,
            computed=len(missing),
            from_cache=done_before,
            truncated=truncated,
            input_id=self.run_id([key for layer_keys in keys for key in layer_keys]),
        )

    def _cached_vectors(self, keys: list[str]) -> list[npt.NDArray[np.float32] | None]:
        """The cached vectors for ``keys`` that keep this engine's precision promise (see
        engine.core.precision_rules); None where missing, malformed or too imprecise."""
        return usable_vectors(
            self.cache, keys, self.spec.width, self.requested_precision, lambda: self.precision
        )

    def row_keys(self, texts: Sequence[str], layer: int = -1) -> list[str]:
        """The per-row embedding keys: content addresses of each text under this model and layer.

        The layer is normalised first (-1 is the last layer's index), so ``--layer -1`` and
        ``--layer 6`` of a 6-layer model share their cache entries.
        """
        context = {**self.spec.cache_context(), "layer": self.spec.layer_index(layer)}
        key_for = text_key_factory("emb", context)
        return [key_for(text) for text in texts]

    def cached_map(
        self, texts: Sequence[str], params: ProjectionParams, layer: int = -1
    ) -> npt.NDArray[np.float32] | None:
        """The projection of ``texts`` if it is cached; reads one value and never loads the model."""
        params.validate()
        address = _projection_address(self.run_id(self.row_keys(texts, layer)), len(texts), params)
        hit = self.cache.get(address, cached_values.coords_expected(len(texts)))
        if hit is None:
            return None
        try:
            return cached_values.coords_from(hit, len(texts))
        except Exception as exc:  # a value that does not fit is a miss, never a crash
            self.cache.reject(address, f"{type(exc).__name__}: {exc}")
            return None

    @cached(
        "proj",
        key=lambda engine, vectors, params, **kw: _projection_parts(
            kw.get("input_id") or matrix_digest(vectors), len(vectors), params
        ),
        expect=lambda engine, vectors, params, **kw: cached_values.coords_expected(len(vectors)),
        load=lambda decoded, engine, vectors, *call, **kwargs: cached_values.coords_from(
            decoded, len(vectors)
        ),
    )
    def projection(
        self,
        vectors: npt.NDArray[np.float32],
        params: ProjectionParams,
        *,
        input_id: str | None = None,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> npt.NDArray[np.float32]:
        """2-D coordinates for ``vectors``, from the cache or computed and then cached.

        ``input_id`` (from :class:`EmbeddingRun`) names the rows without hashing the matrix,
        and lets :meth:`cached_map` find the result from the texts alone.
        """
        params.validate()
        if token is not None:
            token.raise_if_cancelled()
        report(0, 1, f"Projecting ({params.method.upper()})")
        coords = project(vectors, params, token=token, report=report)
        report(1, 1, f"Projecting ({params.method.upper()})")
        return coords

    @cached(
        "attn",
        key=lambda engine, text: {**engine.spec.cache_context(), "text": text},
        expect=lambda engine, text: cached_values.attention_expected(engine.spec),
        codec="q8-zstd",  # at most 0.5/255 error per value
        store=lambda maps: (
            maps.attentions,
            {
                "tokens": list(maps.tokens),
                "offsets": [list(o) for o in maps.offsets],
                "special": list(maps.special),
            },
        ),
        load=lambda decoded, engine, text: cached_values.attention_from(decoded, text),
    )
    def attention(self, text: str) -> AttentionMaps:
        """Attention maps for one text, from the eager attention path (or the cache)."""
        return attention_for_text(self.loaded_model(), text)

    @cached(
        "ana",
        key=lambda engine, texts, **kw: {
            **engine.spec.cache_context(),
            "analysis": "attention-statistics-v1",
            "texts": group_digest(group_sample(texts)),
            "requested": len(texts),
        },
        # Not finite: a statistic is NaN where no text can say anything (see attention_stats).
        expect=lambda engine, texts, **kw: Expected(
            shape=(3, engine.spec.layers, None), dtypes=cached_values.FLOAT32, max_bytes=1 << 20
        ),
        store=statistics_to_array,
        load=lambda decoded, engine, texts, **kwargs: cached_values.statistics_from(decoded, len(texts)),
    )
    def attention_statistics(
        self, texts: Sequence[str], *, token: CancelToken | None = None, report: Report = silent_report
    ) -> AttentionStatistics:
        """Entropy, attention to special tokens and to the previous token, per layer and head, of a group.

        Blank texts are skipped and a group of more than ``engine.model.attention_stats.MAX_ROWS``
        is sampled (fixed seed; the result's ``rows`` and ``requested`` say so). Each text's
        maps come from :meth:`attention` (cached per text), so a second group sharing rows
        computes only the new ones; the finished statistics are cached too. Maps read back from
        the cache are 8-bit, which moved entropies by up to 0.011 and the other statistics by
        up to 0.003 (MiniLM, 200 demo rows), so a warm run can differ from a cold one there.
        Reports progress and checks ``token`` once per text. Runs on any job lane; no Qt.
        """
        sample = group_sample(texts)
        if not sample:
            raise BadInputError("The selected rows have no text to compute attention statistics for.")

        def each_text() -> Iterator[AttentionMaps]:  # one text's maps in memory at a time
            for done, text in enumerate(sample):
                report(done, len(sample), "Attention statistics")
                if token is not None:
                    token.raise_if_cancelled()
                yield self.attention(text)
            report(len(sample), len(sample), "Attention statistics")

        return attention_statistics(each_text(), requested=len(texts))

    def layer_maps(
        self,
        texts: Sequence[str],
        params: ProjectionParams,
        *,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> list[npt.NDArray[np.float32]]:
        """A map of every layer, aligned (Procrustes) so that a slider can move between them.

        Embeddings of every layer come from one forward pass; each layer's map goes through
        :meth:`projection`, so it is cached under the same key as a main map of that layer.
        """
        from engine.maps.layer_maps import layer_maps

        run = self.all_layer_embeddings(texts, token=token, report=report)
        layer_ids = {
            matrix_digest(run.vectors[:, layer]): self.run_id(self.row_keys(texts, layer))
            for layer in range(run.vectors.shape[1])
        }

        def project_layer(vectors: npt.NDArray[np.float32], layer_params: ProjectionParams) -> Any:
            return self.projection(vectors, layer_params, input_id=layer_ids.get(matrix_digest(vectors)))

        return layer_maps(run.vectors, params, token=token, report=report, project_layer=project_layer)

    def sweep(
        self,
        run: EmbeddingRun,
        base: ProjectionParams,
        axis_x: tuple[str, Sequence[Any]],
        axis_y: tuple[str, Sequence[Any]],
        *,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> SweepResult:
        """A grid of maps over two parameters; every cell is a cached :meth:`projection`."""
        from engine.maps.sweep import sweep

        return sweep(
            run.vectors,
            base,
            axis_x,
            axis_y,
            token=token,
            report=report,
            project_cell=lambda params: self.projection(run.vectors, params, input_id=run.input_id),
        )

    @cached(
        "ana",
        key=lambda engine, coords, texts, min_cluster_size=None, **_: {
            "analysis": "clusters",
            "coords": matrix_digest(coords),
            "texts": input_id(texts),
            "min_cluster_size": min_cluster_size,
            "versions": _versions("scikit-learn"),
        },
        expect=lambda engine, coords, *call, **kwargs: Expected(
            shape=(len(coords),),
            dtypes=cached_values.INTEGERS,
            max_bytes=8 * len(coords),
            max_header_bytes=1 << 20,
        ),
        store=lambda result: (result.labels, {"names": {str(k): v for k, v in result.names.items()}}),
        load=lambda decoded, engine, coords, *call, **kwargs: cached_values.clustering_from(decoded),
    )
    def clusters(
        self,
        coords: npt.NDArray[np.float32],
        texts: Sequence[str],
        min_cluster_size: int | None = None,
        *,
        token: CancelToken | None = None,
    ) -> Clustering:
        """HDBSCAN clusters of the map (what the eye sees) with names from their texts' keywords.

        Large maps are clustered in a child process (see engine.maps.analysis): ``token`` stops it."""
        from engine.maps.analysis import cluster_names, clusters

        result = clusters(coords, min_cluster_size=min_cluster_size, token=token)
        return Clustering(result.labels, cluster_names(texts, result.labels))

    @cached(
        "ana",
        key=lambda engine, vectors, coords, k=10, **kw: {
            "analysis": "faithfulness",
            "input": kw.get("input_id") or matrix_digest(vectors),
            "coords": matrix_digest(coords),
            "k": k,
        },
        expect=lambda engine, vectors, coords, *call, **kw: Expected(
            shape=(len(coords),), dtypes=cached_values.FLOATS, max_bytes=8 * len(coords), finite=True
        ),
        load=lambda decoded, *call, **kwargs: cached_values.shares_from(decoded),
    )
    def faithfulness(
        self,
        vectors: npt.NDArray[np.float32],
        coords: npt.NDArray[np.float32],
        k: int = 10,
        *,
        input_id: str | None = None,
        token: CancelToken | None = None,
        report: Report = silent_report,
    ) -> npt.NDArray[np.float32]:
        """Per row, the share of its k model-space neighbours that are also its map neighbours."""
        from engine.maps.analysis import faithfulness

        return faithfulness(vectors, coords, k, token=token, report=report)


def _projection_parts(input_name: str, rows: int, params: ProjectionParams) -> dict[str, Any]:
    return {"input": input_name, "rows": rows, **params.cache_parts()}


def _projection_address(input_name: str, rows: int, params: ProjectionParams) -> str:
    return cache_key("proj", _projection_parts(input_name, rows, params))


def _versions(*names: str) -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in names}
