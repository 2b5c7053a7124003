"""Streaming accumulators: what the drift job keeps of the current window, per feature.

A numeric feature keeps counts and value sums per reference bin; a categorical one keeps a
count per category (capped, see MAX_TRACKED). Both keep missing and invalid counts. Nothing here
grows with the number of rows, so memory is bounded by the chunk being processed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from mlgen.models.profile import CategoricalProfile, NumericProfile, bin_sorted, category_key

MAX_TRACKED = 10_000  # distinct categories kept per feature; beyond, counted as one bucket
OVERFLOW = "__untracked__"


def _valid(arr: pa.Array) -> np.ndarray | None:
    """The validity bitmap as booleans, or None when every value is valid."""
    bitmap = arr.buffers()[0]
    if bitmap is None or arr.null_count == 0:
        return None
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[arr.offset:arr.offset + len(arr)].astype(bool)


def _float64_view(arr: pa.Array) -> np.ndarray:
    """The values of a float64 Array as numpy, nulls as NaN.

    Read from the Arrow buffers directly: `Array.to_numpy` imports pandas (0.5-0.7 s of a drift
    run that otherwise never needs it), and pyarrow.compute costs ~0.1 s to import, which a
    Parquet window of numbers and dictionary-encoded categories never needs. Zero-copy when there
    is no null.
    """
    values = np.frombuffer(arr.buffers()[1], dtype=np.float64, count=len(arr),
                           offset=arr.offset * 8)
    valid = _valid(arr)
    return values if valid is None else np.where(valid, values, np.nan)


def _cast(arr: pa.Array, to: pa.DataType) -> pa.Array:
    import pyarrow.compute as pc

    return pc.cast(arr, to)


def numeric_values(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """float64 values (null -> NaN) and how many non-null values were not numbers."""
    if isinstance(arr, pa.ChunkedArray):
        parts = [numeric_values(c) for c in arr.chunks]
        if not parts:
            return np.empty(0, dtype=np.float64), 0
        values = parts[0][0] if len(parts) == 1 else np.concatenate([v for v, _ in parts])
        return values, sum(bad for _, bad in parts)
    t = arr.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t) \
            or pa.types.is_boolean(t) or pa.types.is_null(t):
        return _float64_view(_cast(arr, pa.float64()) if t != pa.float64() else arr), 0
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        text = _cast(arr, pa.string()) if pa.types.is_dictionary(t) else arr
        try:
            return _float64_view(_cast(text, pa.float64())), 0
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            import pandas as pd  # only for a column holding text that is not numbers

            raw = text.to_pandas()
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            invalid = int((np.isnan(values) & raw.notna().to_numpy()).sum())
            return values, invalid
    # structs, lists, binary: nothing numeric in there
    return np.full(len(arr), np.nan), len(arr) - arr.null_count


def category_counts(arr: pa.Array) -> list[tuple[Any, int]]:
    """(value, count) of the non-null values of one Array.

    A dictionary array (Parquet's own encoding, kept by the reader) is counted with a bincount
    of its indices: no string is looked at per row.
    """
    if pa.types.is_dictionary(arr.type):
        indices = arr.indices
        it = indices.type
        dtype = np.dtype(("i" if pa.types.is_signed_integer(it) else "u") + str(it.byte_width))
        idx = np.frombuffer(indices.buffers()[1], dtype=dtype, count=len(indices),
                            offset=indices.offset * it.byte_width)
        valid = _valid(indices)
        if valid is not None:
            idx = idx[valid]
        counts = np.bincount(idx, minlength=len(arr.dictionary))
        values = arr.dictionary.to_pylist()
        return [(values[i], int(counts[i])) for i in np.flatnonzero(counts)]
    import pyarrow.compute as pc  # text columns (CSV, JSON): ~0.1 s to import, paid only here

    vc = pc.value_counts(arr)
    return list(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))


@dataclass
class NumericAccumulator:
    profile: NumericProfile
    counts: np.ndarray = field(init=False)
    sums: np.ndarray = field(init=False)
    rows: int = 0
    missing: int = 0
    invalid: int = 0
    present: bool = False  # the column appeared in at least one chunk
    minimum: float = math.inf
    maximum: float = -math.inf

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.profile.edges, dtype=np.float64)
        self.counts = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.sums = np.zeros(len(self.edges) + 1, dtype=np.float64)

    def add(self, arr: pa.Array | pa.ChunkedArray | None, rows: int) -> None:
        self.rows += rows
        if arr is None:
            self.missing += rows
            return
        self.present = True
        values, invalid = numeric_values(arr)
        self.invalid += invalid
        if self.edges.size == 0:  # the reference had no value at all: only missingness compares
            self.missing += int((~np.isfinite(values)).sum())
            return
        s = bin_sorted(values, self.edges)
        self.counts += s.counts
        self.sums += s.sums
        self.missing += s.nonfinite
        self.minimum = min(self.minimum, s.minimum)
        self.maximum = max(self.maximum, s.maximum)

    @property
    def count(self) -> int:
        return int(self.counts.sum())


@dataclass
class CategoricalAccumulator:
    profile: CategoricalProfile
    counts: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    missing: int = 0
    invalid: int = 0
    present: bool = False

    def add(self, arr: pa.Array | pa.ChunkedArray | None, rows: int) -> None:
        self.rows += rows
        if arr is None:
            self.missing += rows
            return
        self.present = True
        self.missing += arr.null_count
        t = arr.type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)):
            if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t):
                arr = _cast(arr, pa.string())  # 3 -> "3", 3.0 -> "3" (Arrow's shortest form)
            elif pa.types.is_null(t):
                return
            else:
                self.invalid += len(arr) - arr.null_count
                self.missing += len(arr) - arr.null_count
                return
        chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
        pairs = [pair for chunk in chunks for pair in category_counts(chunk)]
        for value, count in pairs:
            if value is None:
                continue
            key = category_key(value) if pa.types.is_floating(t) or not isinstance(value, str) \
                else value
            if key in self.counts or len(self.counts) < MAX_TRACKED:
                self.counts[key] = self.counts.get(key, 0) + count
            else:
                self.counts[OVERFLOW] = self.counts.get(OVERFLOW, 0) + count

    @property
    def count(self) -> int:
        return sum(self.counts.values())


Accumulator = NumericAccumulator | CategoricalAccumulator
