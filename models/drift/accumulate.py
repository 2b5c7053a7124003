"""Streaming accumulators: what the drift job keeps of the current window, per feature.

A numeric feature keeps counts and value sums per reference bin; a categorical one keeps a
count per category (capped, see MAX_TRACKED). Both keep missing and invalid counts. Nothing here
grows with the number of rows, so memory is bounded by the chunk being processed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mlgen.models.profile import CategoricalProfile, NumericProfile, bin_sorted, category_key

MAX_TRACKED = 10_000  # distinct categories kept per feature; beyond, counted as one bucket
OVERFLOW = "__untracked__"


def numeric_values(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """float64 values (null -> NaN) and how many non-null values were not numbers."""
    t = arr.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t) \
            or pa.types.is_boolean(t) or pa.types.is_null(t):
        values = pc.cast(arr, pa.float64()) if t != pa.float64() else arr
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64), 0
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        text = pc.cast(arr, pa.string()) if pa.types.is_dictionary(t) else arr
        try:
            return np.asarray(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False),
                              dtype=np.float64), 0
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            import pandas as pd

            raw = text.to_pandas()
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            invalid = int((np.isnan(values) & raw.notna().to_numpy()).sum())
            return values, invalid
    # structs, lists, binary: nothing numeric in there
    return np.full(len(arr), np.nan), len(arr) - arr.null_count


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
                arr = pc.cast(arr, pa.string())  # 3 -> "3"; a float 3.0 is normalised below
            elif pa.types.is_null(t):
                return
            else:
                self.invalid += len(arr) - arr.null_count
                self.missing += len(arr) - arr.null_count
                return
        vc = pc.value_counts(arr)
        values = vc.field("values")
        if pa.types.is_dictionary(values.type):
            values = pc.cast(values, pa.string())
        for value, count in zip(values.to_pylist(), vc.field("counts").to_pylist(), strict=True):
            if value is None:
                continue
            key = category_key(value) if pa.types.is_floating(t) else value
            if key in self.counts or len(self.counts) < MAX_TRACKED:
                self.counts[key] = self.counts.get(key, 0) + count
            else:
                self.counts[OVERFLOW] = self.counts.get(OVERFLOW, 0) + count

    @property
    def count(self) -> int:
        return sum(self.counts.values())


Accumulator = NumericAccumulator | CategoricalAccumulator
