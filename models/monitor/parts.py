"""Rows split by a hash of their id into parts, so a monitor run holds one part at a time.

A request id lands in the same part on both sides (predictions and labels), so joining and
de-duplicating part by part gives what doing it on everything at once gives, while memory
holds one part's ids, hash table and sort instead of the whole window's. With one part the
rows stay in memory; with more they are spilled to Arrow IPC stream files in a scratch
folder (deleted on close) as they are read, each part's rows in the order they came.
"""
from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import pyarrow as pa

# What one part may hold, counted in input bytes: a part's ids, the sort of its dictionary
# codes and its join hash table then stay in the tens of MB (benchmarks/monitor_bench.py).
PART_INPUT_BYTES = 48 << 20
MAX_PARTS = 256
_FLUSH_ROWS = 8192  # rows buffered per part before a write: few, large IPC batches
_MULT = np.uint64(0x9E3779B97F4A7C15)
_INVERSE = np.uint64(pow(int(_MULT), -1, 1 << 64))
_POWERS = np.ones(1, np.uint64)


def parts_for(files: list[Path]) -> int:
    """How many parts for these input files (Parquet counted four times its size: its
    compressed columns take about that much more once read)."""
    size = sum(f.stat().st_size * (4 if f.suffix == ".parquet" else 1) for f in files)
    return max(1, min(MAX_PARTS, math.ceil(size / PART_INPUT_BYTES)))


def part_of(ids: pa.Array, parts: int) -> np.ndarray:
    """The part (0 .. parts-1) of each id (a string array without nulls): a polynomial hash of
    the id's bytes, vectorised with numpy (uint64 arithmetic wraps, which is the modulus)."""
    ids = ids.cast(pa.string())
    n = len(ids)
    if parts == 1 or n == 0:
        return np.zeros(n, np.int64)
    offsets = np.frombuffer(ids.buffers()[1], np.int32)[ids.offset:ids.offset + n + 1]
    data = ids.buffers()[2]
    raw = (np.frombuffer(data, np.uint8)[offsets[0]:offsets[-1]] if data is not None
           else np.zeros(0, np.uint8))
    starts = (offsets[:-1] - offsets[0]).astype(np.int64)
    lengths = np.diff(offsets).astype(np.int64)
    longest = int(lengths.max()) if n else 0
    global _POWERS
    if len(_POWERS) < longest:  # _MULT ** position, wrapping: cumprod, then divide by _MULT
        _POWERS = (np.cumprod(np.full(longest, _MULT, np.uint64)) * _INVERSE).astype(np.uint64)
    pos = np.arange(len(raw), dtype=np.int64) - np.repeat(starts, lengths)
    terms = (raw.astype(np.uint64) + np.uint64(1)) * _POWERS[pos]
    sums = np.zeros(len(raw) + 1, np.uint64)
    np.cumsum(terms, out=sums[1:])
    h = sums[starts + lengths] - sums[starts] + lengths.astype(np.uint64)
    h ^= h >> np.uint64(31)
    h *= _MULT
    h ^= h >> np.uint64(29)
    which: np.ndarray = (h % np.uint64(parts)).astype(np.int64)
    return which


_PREFIX = "mlgen-monitor-"
_STALE_SECONDS = 86400  # a run killed mid-way (OOM, deadline) leaves its folder: gone a day on


def _remove_stale(folder: Path) -> None:
    now = time.time()
    for old in folder.glob(_PREFIX + "*"):
        try:
            if old.is_dir() and now - old.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


class Parts:
    """`add` tables (each with an `id` column without nulls); `table(i)` gives part i's rows,
    in the order they were added. Use as a context manager: the spill folder goes on exit."""

    def __init__(self, parts: int, schema: pa.Schema, spill_dir: Path | None = None) -> None:
        self.count = parts
        self.schema = schema
        self._memory: list[list[pa.Table]] = [[] for _ in range(parts)]
        self._buffered = [0] * parts
        self._folder: Path | None = None  # the spill folder, with more than one part
        self._writers: list[pa.ipc.RecordBatchStreamWriter | None] = [None] * parts
        if parts > 1:
            spill_dir = spill_dir or Path(tempfile.gettempdir())
            spill_dir.mkdir(parents=True, exist_ok=True)
            _remove_stale(spill_dir)
            self._folder = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=spill_dir))

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self.count == 1:
            self._memory[0].append(table)
            return
        which = part_of(table["id"].combine_chunks(), self.count)
        order = np.argsort(which, kind="stable")
        ends = np.cumsum(np.bincount(which, minlength=self.count))
        ordered = table.take(order)
        start = 0
        for i, end in enumerate(ends.tolist()):
            if end > start:
                self._memory[i].append(ordered.slice(start, end - start))
                self._buffered[i] += end - start
                if self._buffered[i] >= _FLUSH_ROWS:
                    self._flush(i)
            start = end

    def _path(self, i: int) -> Path:
        if self._folder is None:
            raise RuntimeError("the parts are closed (or in memory): nothing on disk")
        return self._folder / f"part-{i}.arrow"

    def _flush(self, i: int) -> None:
        if not self._memory[i]:
            return
        writer = self._writers[i]
        if writer is None:
            writer = pa.ipc.new_stream(str(self._path(i)), self.schema)
            self._writers[i] = writer
        writer.write_table(pa.concat_tables(self._memory[i]).combine_chunks())
        self._memory[i] = []
        self._buffered[i] = 0

    def table(self, i: int) -> pa.Table:
        if self.count == 1:
            tables, self._memory[0] = self._memory[0], []
            return (pa.concat_tables(tables) if tables else self.schema.empty_table())
        self._flush(i)
        writer = self._writers[i]
        if writer is None:
            return self.schema.empty_table()
        writer.close()
        self._writers[i] = None
        path = self._path(i)
        with pa.OSFile(str(path)) as source:
            table = pa.ipc.open_stream(source).read_all()
        path.unlink()
        return table

    def close(self) -> None:
        for writer in self._writers:
            if writer is not None:
                writer.close()
        self._writers = [None] * self.count
        self._memory = [[] for _ in range(self.count)]
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
