"""The embedding pipeline's parts: tokenizing ahead on a thread, starting a batch, collecting it.

:func:`engine.model.inference.embed_texts` strings these together so the model is never idle:
the next batch is tokenized while the current one runs, and on a GPU a batch's result is
collected (one event, no synchronisation) only after the next batch has been started.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import BadInputError, ModelError
from engine.model.models import LoadedModel

BatchKey = tuple[int, int, int]  # (group, first position, end position) of a batch


@contextlib.contextmanager
def compute_context(model: LoadedModel) -> Iterator[None]:
    """What the forward pass runs under: autocast for a low precision on the CPU, else nothing
    (a GPU's weights are in the low precision already; float32 needs nothing). Autocast runs the
    matrix products in bf16 and keeps layer norms, softmax and the pooling in float32."""
    if model.device == "cpu" and model.precision != "float32":
        import torch

        with torch.autocast("cpu", dtype=getattr(torch, model.precision)):
            yield
    else:
        yield


@dataclass
class Encoded:
    """A tokenized batch, on the host (pinned for a GPU), and how many rows lost tokens."""

    tensors: dict[str, Any]
    truncated: int


@dataclass
class Launched:
    """A batch whose forward pass has been started: its pooled vectors (on the host once
    ``ready`` has fired) and its tokenized inputs' truncation count."""

    pooled: Any
    ready: Any  # a CUDA event, or None where the result is complete on return
    truncated: int


class Tokenizing:
    """Tokenizes batches on one thread of its own, ahead of the model.

    Every call to the tokenizer goes through that one thread: a fast tokenizer with padding and
    truncation set is not safe to call from two threads at once ("Already borrowed"). A batch
    asked for that was not tokenized ahead (after an out-of-memory error changed the batch
    size) is tokenized there too, and waited for.
    """

    def __init__(self, model: LoadedModel, texts_for: Callable[[BatchKey], list[str]]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._model = model
        self._texts_for = texts_for
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loupe-tokenize")
        self._ahead: dict[BatchKey, Future[Encoded]] = {}

    def __enter__(self) -> Tokenizing:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self._ahead.values():
            future.cancel()
        self._pool.shutdown(wait=True)

    def ahead(self, key: BatchKey) -> None:
        if key not in self._ahead:
            self._ahead[key] = self._pool.submit(tokenize, self._model, self._texts_for(key))

    def take(self, key: BatchKey) -> Encoded:
        self.ahead(key)
        future = self._ahead.pop(key)
        for stale in [other for other in self._ahead if other[:2] <= key[:2]]:  # never to be asked for
            self._ahead.pop(stale).cancel()
        return future.result()


def tokenize(model: LoadedModel, texts: list[str]) -> Encoded:
    spec = model.spec
    encoded = model.tokenizer(
        texts, padding=True, truncation=True, max_length=spec.max_length, return_tensors="pt"
    )
    truncated = count_truncated(encoded, spec.max_length)
    tensors = dict(encoded)
    if model.device == "cuda":  # page-locked, so the copy to the GPU runs without the host
        tensors = {name: tensor.pin_memory() for name, tensor in tensors.items()}
    return Encoded(tensors, truncated)


def launch(model: LoadedModel, encoded: Encoded, layer: int, all_layers: bool) -> Launched:
    """Start a batch's forward pass; on a GPU this returns before the device has finished."""
    import torch

    spec = model.spec
    cuda = model.device == "cuda"
    inputs = {name: tensor.to(model.device, non_blocking=cuda) for name, tensor in encoded.tensors.items()}
    want_hidden = all_layers or layer != -1
    output = model.embedding_model()(**inputs, output_hidden_states=want_hidden)
    mask = inputs["attention_mask"]
    if all_layers:
        pooled = torch.stack([pool(hidden, mask, spec.pooling) for hidden in output.hidden_states], dim=1)
    else:
        hidden = pick_layer(output, layer) if want_hidden else output.last_hidden_state
        pooled = pool(hidden, mask, spec.pooling)
    if spec.normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
    pooled = pooled.float()
    if not cuda:
        return Launched(pooled.cpu(), None, encoded.truncated)
    host = torch.empty(pooled.shape, dtype=torch.float32, pin_memory=True)
    host.copy_(pooled, non_blocking=True)
    ready = torch.cuda.Event()  # type: ignore[no-untyped-call]
    ready.record()
    return Launched(host, ready, encoded.truncated)


def collect(launched: Launched, rows: int) -> tuple[npt.NDArray[np.float32], int]:
    """A launched batch's vectors (waiting for its event only), first ``rows`` rows."""
    if launched.ready is not None:
        launched.ready.synchronize()
    vectors = launched.pooled.numpy()[:rows].copy()  # a copy lets the pinned buffer go
    truncated = launched.truncated if len(launched.pooled) == rows else launched.truncated // 2
    return vectors, truncated


def count_truncated(encoded: Any, max_length: int) -> int:
    """How many rows lost tokens to truncation, exactly.

    A fast (Rust) tokenizer keeps what it cut off in each encoding's ``overflowing`` list at
    no extra cost, which tells a cut row from one exactly ``max_length`` tokens long. A slow
    tokenizer has no encodings; there, a row that filled the limit is counted (the rare row of
    exactly ``max_length`` tokens is over-counted).
    """
    encodings = getattr(encoded, "encodings", None)
    if encodings:
        return sum(1 for encoding in encodings if encoding.overflowing)
    return int((encoded["attention_mask"].sum(dim=1) >= max_length).sum())


def pick_layer(output: Any, layer: int) -> Any:
    states = output.hidden_states
    if not -len(states) <= layer < len(states):
        raise BadInputError(f"Layer {layer} is out of range: this model has layers 0..{len(states) - 1}.")
    return states[layer]


def pool(hidden: Any, mask: Any, pooling: str) -> Any:
    """Pool token states over the mask; batches are right-padded (load_model sets that)."""
    import torch

    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    if pooling == "mean":
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    raise ModelError(f"Unknown pooling {pooling!r}: use mean, cls, last or max.")
