"""Read the current window in chunks: the server's JSON-lines request logs, CSV or Parquet.

Every reader yields `{column: pyarrow.Array}` chunks of at most about `chunk_rows` rows, so
memory is bounded by the chunk size whatever the window holds. Problems (corrupt files, bad
lines, unparseable timestamps) are recorded in the `ReadLog` instead of stopping the run: the
report says what happened, and only a run where nothing could be read ends in an error.

Rows carry their `model` field along with `ts` (unless a profiled feature is itself called
"model"): a request-log folder shared by several servers holds other models' rows, and those
are dropped and counted (`ReadLog.other_models`) rather than judged against this profile.

Fast paths are pyarrow's multi-threaded readers; when one of them rejects a file (a value of the
wrong type, a malformed line) we fall back to a tolerant Python reader for the rest of that file,
resuming after the rows already read, and say so in the report.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

LOG_FIELDS = frozenset({"ts", "model", "prediction", "features", "id", "request_id", "score"})
_ROTATED = re.compile(r"^(?P<base>.+\.jsonl)(?:\.(?P<n>\d+))?$")


@dataclass(frozen=True)
class Problem:
    kind: str  # corrupt_file, bad_lines, bad_timestamps, extra_column, missing_column, ...
    message: str
    feature: str | None = None
    file: str | None = None
    count: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ReadLog:
    """What reading the window did; filled in while streaming (so not frozen)."""

    format: str = ""
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_in_window: int = 0
    chunks: int = 0
    columns: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    other_models: dict[str, int] = field(default_factory=dict)  # model name -> rows dropped

    @property
    def rows_other_models(self) -> int:
        return sum(self.other_models.values())


def _carried(name: str, kinds: Mapping[str, str]) -> bool:
    """Columns read besides the features: the timestamp, and the model name to filter on."""
    return name == "ts" or (name == "model" and "model" not in kinds)


def _carried_types(kinds: Mapping[str, str]) -> dict[str, pa.DataType]:
    return {} if "model" in kinds else {"model": pa.string()}


def detect_files(path: Path) -> tuple[str, list[Path]]:
    """The input format and the files to read, oldest first for a rotated request log."""
    if path.is_dir():
        logs = [p for p in path.iterdir() if p.is_file() and _ROTATED.match(p.name)]
        if logs:
            # requests.jsonl.N is the oldest, requests.jsonl the newest.
            def age(p: Path) -> tuple[str, int]:
                m = _ROTATED.match(p.name)
                if m is None:  # detect_files listed only names the pattern matches
                    raise ValueError(f"not a request-log file name: {p.name}")
                return (m["base"], -int(m["n"]) if m["n"] else 0)

            return "jsonl", sorted(logs, key=age)
        for fmt, patterns in (("parquet", ("*.parquet", "*.pq")), ("csv", ("*.csv",)),
                              ("jsonl", ("*.ndjson", "*.json"))):
            found = sorted(p for pat in patterns for p in path.glob(pat))
            if found:
                return fmt, found
        return "none", []
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet", [path]
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv", [path]
    return "jsonl", [path]


def read_chunks(
    path: Path,
    kinds: Mapping[str, str],
    *,
    chunk_rows: int,
    since: datetime | None,
    log: ReadLog,
    model: str | None = None,
) -> Iterator[tuple[dict[str, pa.Array | pa.ChunkedArray], int]]:
    """(chunk, rows) pairs of the window at `path`; `kinds` maps features to numeric/categorical.

    A chunk may lack a feature's column (then all its rows are missing for that feature). With
    `model`, rows whose `model` field names another model are dropped (rows without the field
    are kept: a CSV export or an old log need not have it).
    """
    fmt, files = detect_files(path)
    log.format = fmt
    if not path.exists():
        log.problems.append(Problem("missing_input", f"{path}: no such file or folder"))
        return
    for file in files:
        if since is not None and fmt == "jsonl" and file.stat().st_mtime < since.timestamp():
            continue  # a rotated log last written before the window opened holds nothing of it
        log.files.append(str(file))
        reader = {"parquet": _parquet, "csv": _csv_reader(), "jsonl": _jsonl_reader()}[fmt]
        for chunk in reader(file, kinds, chunk_rows, log):
            if not chunk:
                continue
            log.rows_read += len(next(iter(chunk.values())))
            chunk, n = _own_model(chunk, model, log)
            if not n:
                continue
            chunk, n = _in_window(chunk, since, file, log)
            if n:
                log.rows_in_window += n
                log.chunks += 1
                log.columns.update(chunk)
                yield chunk, n


def _own_model(chunk: dict[str, pa.Array], model: str | None, log: ReadLog
               ) -> tuple[dict[str, pa.Array], int]:
    n = len(next(iter(chunk.values())))
    names = chunk.pop("model", None)
    if not chunk:  # no feature and no ts column: the rows still count, as all-missing
        chunk = {"ts": pa.nulls(n, pa.string())}
    if model is None or names is None or names.null_count == len(names):
        return chunk, n
    import pyarrow.compute as pc

    if not pa.types.is_string(names.type) and not pa.types.is_large_string(names.type):
        names = pc.cast(names, pa.string())  # a CSV column of numbers: still names
    other = pc.fill_null(pc.not_equal(names, pa.scalar(model)), False)
    dropped = int(pc.sum(other.cast(pa.int64())).as_py() or 0)
    if not dropped:
        return chunk, n
    for item in pc.value_counts(pc.filter(names, other)).to_pylist():
        key = str(item["values"])
        log.other_models[key] = log.other_models.get(key, 0) + int(item["counts"])
    keep = pc.invert(other)
    return {k: pc.filter(v, keep) for k, v in chunk.items()}, n - dropped


def _in_window(
    chunk: dict[str, pa.Array], since: datetime | None, file: Path, log: ReadLog
) -> tuple[dict[str, pa.Array], int]:
    n = len(next(iter(chunk.values())))
    ts = chunk.pop("ts", None)
    if since is None or ts is None:
        return chunk, n
    import pyarrow.compute as pc  # only to filter by time: ~0.1 s to import

    try:
        stamps = pc.cast(ts, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        stamps = pa.array([_parse_ts(v) for v in ts.to_pylist()], pa.timestamp("us", tz="UTC"))
    bad = stamps.null_count - ts.null_count
    if bad:
        log.problems.append(Problem("bad_timestamps", f"{bad} rows with an unparseable ts were "
                                    "kept in the window", file=str(file), count=bad))
    keep = pc.or_kleene(pc.greater_equal(stamps, pa.scalar(since, pa.timestamp("us", tz="UTC"))),
                        pc.is_null(stamps))
    kept = int(pc.sum(keep.cast(pa.int64())).as_py() or 0)
    if kept == n:
        return chunk, n
    return {k: pc.filter(v, keep) for k, v in chunk.items()}, kept


def _jsonl_reader() -> Any:
    from mlgen.models.drift.jsonlines import read_jsonl  # it imports this module's helpers

    return read_jsonl


def _csv_reader() -> Any:
    from mlgen.models.drift.csvfiles import read_csv  # it imports this module's helpers

    return read_csv


def _parse_ts(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))  # 3.11+ reads a trailing Z
    except ValueError:
        return None


# --- Parquet --------------------------------------------------------------------------------


def _parquet(file: Path, kinds: Mapping[str, str], chunk_rows: int, log: ReadLog
             ) -> Iterator[dict[str, pa.Array]]:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(file).names
        # pre_buffer=False with a small buffer streams each column chunk page by page: the
        # default pre-buffers a whole row group (pandas writes up to 1M rows in one), which made
        # the peak follow the writer's row-group size instead of our chunk size. Categorical
        # columns come back dictionary-encoded as Parquet stores them: counting them is then a
        # bincount of small integers, and the strings are never materialised per row.
        pf = pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 20,
                            read_dictionary=[n for n in names if kinds.get(n) == "categorical"])
        wanted = [n for n in names if n in kinds or _carried(n, kinds)]
        _note_extra(names, kinds, file, log)
        if not wanted:  # no profiled column at all: the rows still count, as all-missing
            total = pf.metadata.num_rows
            for start in range(0, total, chunk_rows):
                yield {"ts": pa.nulls(min(chunk_rows, total - start), pa.string())}
            return
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=wanted, use_threads=True):
            yield {n: batch.column(i) for i, n in enumerate(batch.schema.names)}
    except (OSError, pa.ArrowException) as exc:
        log.problems.append(Problem("corrupt_file", f"cannot read Parquet: {exc}", file=str(file)))


# --- CSV ------------------------------------------------------------------------------------


def _arrow_types(kinds: Mapping[str, str]) -> dict[str, pa.DataType]:
    return {n: (pa.float64() if k == "numeric" else pa.string()) for n, k in kinds.items()}


# --- JSON lines -----------------------------------------------------------------------------


def _group(pieces: Iterator[dict[str, Any]], chunk_rows: int
           ) -> Iterator[dict[str, pa.ChunkedArray]]:
    """Regroup pieces of any size into chunks of exactly `chunk_rows` rows (the last one fewer).

    Zero-copy: a chunk references slices of the pieces. A chunk only joins pieces with the same
    columns and types (a file read partly by the typed and partly by the tolerant reader gives
    two groups), so a chunk at such a seam can be shorter.
    """
    pending: list[dict[str, Any]] = []
    rows = 0
    key: tuple[tuple[str, pa.DataType], ...] | None = None

    def merged() -> dict[str, pa.ChunkedArray]:
        # Arrays only: given a ChunkedArray, pa.chunked_array converts it and imports pandas.
        return {name: pa.chunked_array([c for p in pending for c in _arrays(p[name])], arr.type)
                for name, arr in pending[0].items()}

    for piece in pieces:
        if not piece:
            continue
        k = tuple((name, arr.type) for name, arr in piece.items())
        if pending and k != key:
            yield merged()
            pending, rows = [], 0
        key = k
        n = len(next(iter(piece.values())))
        offset = 0
        while offset < n:
            take = min(chunk_rows - rows, n - offset)
            pending.append({name: arr.slice(offset, take) for name, arr in piece.items()})
            rows += take
            offset += take
            if rows == chunk_rows:
                yield merged()
                pending, rows = [], 0
    if pending:
        yield merged()


def _arrays(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _line_pieces(file: Path, size: int, *, skip_first_line: bool = False) -> Iterator[bytes]:
    """The file in pieces of about `size` bytes, each ending at a line break."""
    with file.open("rb") as fh:
        if skip_first_line:
            fh.readline()
        while True:
            data = fh.read(size)
            if not data:
                return
            if not data.endswith(b"\n"):
                data += fh.readline()
            yield data


def _note_extra(names: list[str], kinds: Mapping[str, str], file: Path, log: ReadLog) -> None:
    known = {p.feature for p in log.problems if p.kind == "extra_column"}
    for name in names:
        if name not in kinds and name not in LOG_FIELDS and name not in known:
            log.problems.append(Problem("extra_column", f"column {name!r} is not in the reference "
                                        "profile; ignored", feature=name, file=str(file)))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
