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

import json
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
                assert m is not None
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
        reader = {"parquet": _parquet, "csv": _csv, "jsonl": _jsonl}[fmt]
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


def _csv(file: Path, kinds: Mapping[str, str], chunk_rows: int, log: ReadLog
         ) -> Iterator[dict[str, pa.ChunkedArray]]:
    return _group(_csv_blocks(file, kinds, log), chunk_rows)


def _csv_blocks(file: Path, kinds: Mapping[str, str], log: ReadLog
                ) -> Iterator[dict[str, pa.Array | pa.ChunkedArray]]:
    if file.name.endswith(".gz"):
        return _csv_stream(file, kinds, log)
    return _csv_pieces(file, kinds, log)


CSV_PIECE = 16 << 20


def _arrow_types(kinds: Mapping[str, str]) -> dict[str, pa.DataType]:
    return {n: (pa.float64() if k == "numeric" else pa.string()) for n, k in kinds.items()}


class _SkippedRows:
    """pyarrow's invalid_row_handler: skip a malformed CSV row and count it for the report."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, row: Any) -> str:
        self.count += 1
        return "skip"

    def report(self, file: Path, log: ReadLog) -> None:
        if self.count:
            log.problems.append(Problem("bad_lines", f"{self.count} malformed CSV rows skipped",
                                        file=str(file), count=self.count))


def _csv_pieces(file: Path, kinds: Mapping[str, str], log: ReadLog
                ) -> Iterator[dict[str, pa.Array | pa.ChunkedArray]]:
    """Pieces of whole lines, each parsed by pyarrow's multi-threaded reader.

    pyarrow's streaming CSV reader parses on one thread (2.1 s for 500 MB here); pieces of
    16 MB parsed with threads take 1.0 s, and at most one piece is in memory at a time. A line
    break always ends a row here, as in pyarrow's own reader (newlines_in_values is off). A
    piece whose values do not fit the feature types is read again as text, so only its bad
    values are counted as invalid.
    """
    import csv

    import pyarrow.csv as pcsv

    try:
        with file.open("rb") as fh:
            first = fh.readline()
    except OSError as exc:
        log.problems.append(Problem("corrupt_file", f"cannot read CSV: {_short(exc)}",
                                    file=str(file)))
        return
    try:
        names = next(csv.reader([first.decode("utf-8-sig")]), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        log.problems.append(Problem("corrupt_file", f"cannot read the CSV header: {_short(exc)}",
                                    file=str(file)))
        return
    _note_extra(names, kinds, file, log)
    wanted = [n for n in names if n in kinds or _carried(n, kinds)]
    skipped = _SkippedRows()
    types = {**_arrow_types(kinds), **_carried_types(kinds)}
    read_options = pcsv.ReadOptions(column_names=names, block_size=1 << 20)
    parse_options = pcsv.ParseOptions(invalid_row_handler=skipped)
    warned = False
    try:
        for data in _line_pieces(file, CSV_PIECE, skip_first_line=True):
            for typed in (True, False):
                try:
                    table = pcsv.read_csv(pa.BufferReader(data), read_options=read_options,
                                          parse_options=parse_options,
                                          convert_options=pcsv.ConvertOptions(
                                              column_types=types if typed
                                              else {n: pa.string() for n in types},
                                              include_columns=wanted or names[:1],
                                              strings_can_be_null=True))
                    break
                except pa.ArrowInvalid as exc:
                    if not typed:
                        raise
                    if not warned:
                        log.problems.append(Problem(
                            "wrong_types", f"values of unexpected type ({_short(exc)}); read "
                            "those parts of the file as text and counted them as invalid",
                            file=str(file)))
                        warned = True
            del data
            if table.num_rows:
                yield (dict(zip(table.column_names, table.columns, strict=True)) if wanted
                       else {"ts": pa.nulls(table.num_rows, pa.string())})
    except (pa.ArrowInvalid, OSError) as exc:
        log.problems.append(Problem("corrupt_file", f"cannot read CSV: {_short(exc)}",
                                    file=str(file)))
    skipped.report(file, log)


def _csv_stream(file: Path, kinds: Mapping[str, str], log: ReadLog
                ) -> Iterator[dict[str, pa.Array]]:
    """Compressed CSV: pyarrow's streaming reader (it decompresses as it goes)."""
    import pyarrow.csv as pcsv

    skipped = _SkippedRows()
    types = {**_arrow_types(kinds), **_carried_types(kinds)}
    # Small blocks, regrouped into chunks by _group: pyarrow's streaming reader reads up to 32
    # blocks ahead of the consumer, so its memory is 32 x the block size (16 MB blocks: the
    # peak grew from 284 MB at 100k rows to 727 MB at 1M; 1 MB blocks: flat).
    block = 1 << 20
    done = 0
    for typed in (True, False):
        try:
            reader = pcsv.open_csv(
                file,
                read_options=pcsv.ReadOptions(block_size=block),
                parse_options=pcsv.ParseOptions(invalid_row_handler=skipped),
                convert_options=pcsv.ConvertOptions(
                    column_types=types if typed else {n: pa.string() for n in types},
                    strings_can_be_null=True,
                ),
            )
            _note_extra(reader.schema.names, kinds, file, log)
            seen = 0
            for batch in reader:
                n = batch.num_rows
                if seen + n <= done:  # already yielded by the typed pass
                    seen += n
                    continue
                start = max(0, done - seen)
                seen += n
                cols = {name: batch.column(i).slice(start)
                        for i, name in enumerate(batch.schema.names)
                        if name in kinds or _carried(name, kinds)}
                done = seen
                yield cols or {"ts": pa.nulls(n - start, pa.string())}
            break
        except pa.ArrowInvalid as exc:
            if typed:
                log.problems.append(Problem(
                    "wrong_types", f"values of unexpected type ({_short(exc)}); "
                    "read the rest of the file as text and counted them as invalid",
                    file=str(file)))
                continue
            log.problems.append(Problem("corrupt_file", f"cannot read CSV: {_short(exc)}",
                                        file=str(file)))
        except OSError as exc:
            log.problems.append(Problem("corrupt_file", f"cannot read CSV: {_short(exc)}",
                                        file=str(file)))
            break
    skipped.report(file, log)


# --- JSON lines -----------------------------------------------------------------------------


def _jsonl(file: Path, kinds: Mapping[str, str], chunk_rows: int, log: ReadLog
           ) -> Iterator[dict[str, pa.ChunkedArray]]:
    return _group(_jsonl_pieces(file, kinds, chunk_rows, log), chunk_rows)


def _jsonl_pieces(file: Path, kinds: Mapping[str, str], chunk_rows: int, log: ReadLog
                  ) -> Iterator[dict[str, pa.Array | pa.ChunkedArray]]:
    import pyarrow.json as pj

    try:
        with file.open("rb") as fh:
            first = fh.readline()
    except OSError as exc:
        log.problems.append(Problem("corrupt_file", f"cannot read: {exc}", file=str(file)))
        return
    nested = b'"features"' in first
    types = _arrow_types(kinds)
    carried = list(_carried_types(kinds).items())
    if nested:
        schema = pa.schema([("ts", pa.string()), *carried,
                            ("features", pa.struct(list(types.items())))])
    else:
        schema = pa.schema([("ts", pa.string()), *carried, *types.items()])
    # Pieces of whole lines, each parsed by pyarrow (1 MB blocks, in parallel) and dropped before
    # the next is read: pyarrow's own streaming JSON reader reads ahead without bound when we
    # consume slower than it parses (RSS grew 420 -> 880 MB from 200k to 1M rows). Pieces of
    # at most 8 MB (~12k request-log rows) are regrouped into chunks of chunk_rows by _group.
    piece = max(1 << 20, min(chunk_rows * max(len(first), 64), 8 << 20))
    done = 0
    read_options = pj.ReadOptions(block_size=1 << 20)
    parse_options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        for data in _line_pieces(file, piece):
            table = pj.read_json(pa.BufferReader(data), read_options=read_options,
                                 parse_options=parse_options)
            del data
            cols = dict(zip(table.column_names, table.columns, strict=True))
            if nested:
                feats = pa.concat_arrays(cols.pop("features").chunks) if table.num_rows else None
                sub = ({feats.type.field(i).name: feats.field(i)
                        for i in range(feats.type.num_fields)} if feats is not None else {})
                _note_extra(list(sub), kinds, file, log)
                own = {n: cols[n] for n in ("ts", "model") if n in cols and _carried(n, kinds)}
                cols = {**own, **{n: sub[n] for n in sub if n in kinds}}
            else:
                _note_extra(list(cols), kinds, file, log)
                cols = {n: c for n, c in cols.items() if n in kinds or _carried(n, kinds)}
            done += table.num_rows
            if table.num_rows:
                yield cols
        return
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        log.problems.append(Problem(
            "wrong_types", f"pyarrow rejected the file ({_short(exc)}); read the rest line by "
            "line, skipping malformed lines and counting values of the wrong type", file=str(file)))
    except OSError as exc:
        log.problems.append(Problem("corrupt_file", f"cannot read: {_short(exc)}", file=str(file)))
        return
    yield from _jsonl_python(file, kinds, chunk_rows, log, skip=done)


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


def _jsonl_python(file: Path, kinds: Mapping[str, str], chunk_rows: int, log: ReadLog, *, skip: int
                  ) -> Iterator[dict[str, pa.Array]]:
    """The tolerant reader: one json.loads per line, bad lines counted and skipped."""
    bad = 0
    rows: list[dict[str, Any]] = []
    stamps: list[Any] = []
    models: list[Any] = []
    carry_model = _carried("model", kinds)
    present: set[str] = set()
    extras: set[str] = set()

    def flush() -> dict[str, pa.Array]:
        out: dict[str, pa.Array] = {"ts": pa.array(stamps, pa.string())}
        if carry_model:
            out["model"] = pa.array(models, pa.string())
        for name, kind in kinds.items():
            if name in present:
                values = [r.get(name) for r in rows]
                out[name] = _python_column(values, kind)
        rows.clear()
        stamps.clear()
        models.clear()
        return out

    with file.open("rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            if skip:
                skip -= 1
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                bad += 1
                continue
            if not isinstance(obj, dict):
                bad += 1
                continue
            feats = obj.get("features", obj)
            if not isinstance(feats, dict):
                bad += 1
                continue
            present.update(k for k in feats if k in kinds)
            extras.update(k for k in feats if k not in kinds and k not in LOG_FIELDS)
            rows.append(feats)
            stamps.append(obj.get("ts") if isinstance(obj.get("ts"), str) else None)
            name = obj.get("model")
            models.append(None if name is None or isinstance(name, dict | list) else str(name))
            if len(rows) >= chunk_rows:
                yield flush()
    if rows:
        yield flush()
    _note_extra(sorted(extras), kinds, file, log)
    if bad:
        log.problems.append(Problem("bad_lines", f"{bad} lines that are not JSON objects skipped",
                                    file=str(file), count=bad))


def _python_column(values: list[Any], kind: str) -> pa.Array:
    if kind == "numeric":
        # Keep the raw values as text when any is not a number: the engine counts them invalid.
        if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
            return pa.array(values, pa.float64())
        return pa.array([None if v is None else json.dumps(v) if not isinstance(v, str) else v
                         for v in values], pa.string())
    from mlgen.models.profile import category_key

    return pa.array([None if v is None else category_key(v) for v in values], pa.string())


def _note_extra(names: list[str], kinds: Mapping[str, str], file: Path, log: ReadLog) -> None:
    known = {p.feature for p in log.problems if p.kind == "extra_column"}
    for name in names:
        if name not in kinds and name not in LOG_FIELDS and name not in known:
            log.problems.append(Problem("extra_column", f"column {name!r} is not in the reference "
                                        "profile; ignored", feature=name, file=str(file)))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
