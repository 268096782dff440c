"""A read-only Python sequence over a pyarrow array, so large tables are never held twice.

A 1M-row Parquet file's texts stay in Arrow's buffers; each row becomes a Python object only
when it is read (one at a time, or in batches when iterated). Immutable, so it crosses
threads freely, like the :class:`~engine.data.datasets.Dataset` that holds it.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, SupportsIndex, TypeVar, cast, overload

import numpy.typing as npt

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")

_ITER_BATCH = 65_536  # rows converted at once while iterating: fast, and a bounded copy


class ArrowSequence(Sequence[T], Generic[T]):
    """``Sequence`` view of a pyarrow ``Array``/``ChunkedArray``; items convert on access.

    Compares equal to any sequence with the same items (a tuple included) and hashes like
    the tuple of its items, so a :class:`~engine.data.datasets.Dataset` compares by content
    whichever reader built it.
    """

    __slots__ = ("_chunks", "_hash", "_length", "_starts")

    def __init__(self, array: pa.Array[Any] | pa.ChunkedArray[Any]) -> None:
        import pyarrow as pa

        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        self._chunks: list[pa.Array[Any]] = [chunk for chunk in chunks if len(chunk)]
        self._starts: list[int] = []
        total = 0
        for chunk in self._chunks:
            self._starts.append(total)
            total += len(chunk)
        self._length = total
        self._hash: int | None = None

    @property
    def arrow(self) -> pa.ChunkedArray[Any]:
        """The data as a pyarrow ``ChunkedArray`` (no copy), for vectorised consumers."""
        import pyarrow as pa

        return pa.chunked_array(self._chunks, type=self._chunks[0].type if self._chunks else pa.null())

    def __len__(self) -> int:
        return self._length

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> npt.NDArray[Any]:
        """``np.asarray(seq)`` in one vectorised conversion (numbers stay numbers, text is object)."""
        array = self.arrow.to_numpy(zero_copy_only=False)
        return array if dtype is None else array.astype(dtype, copy=False)

    @overload
    def __getitem__(self, index: SupportsIndex) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> ArrowSequence[T]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> T | ArrowSequence[T]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            if step == 1:
                return ArrowSequence(self.arrow.slice(start, max(0, stop - start)))
            import pyarrow as pa

            return ArrowSequence(self.arrow.take(pa.array(range(start, stop, step), pa.int64())))
        position = operator.index(index)
        if position < 0:
            position += self._length
        if not 0 <= position < self._length:
            raise IndexError("ArrowSequence index out of range")
        chunk = bisect.bisect_right(self._starts, position) - 1
        value: T = self._chunks[chunk][position - self._starts[chunk]].as_py()
        return value

    def __iter__(self) -> Iterator[T]:
        for chunk in self._chunks:
            for start in range(0, len(chunk), _ITER_BATCH):
                yield from cast("list[T]", chunk.slice(start, _ITER_BATCH).to_pylist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ArrowSequence) and self.arrow.type == other.arrow.type:
            return self._length == other._length and self.arrow.equals(other.arrow)
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return self._length == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self))
        return self._hash

    def __repr__(self) -> str:
        head = ", ".join(repr(item) for item in self[:3])
        return f"ArrowSequence([{head}{', …' if self._length > 3 else ''}], {self._length} rows)"
