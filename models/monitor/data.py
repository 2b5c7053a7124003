"""Reading predictions (the request log) and labels (labels.jsonl, CSV, Parquet) as arrow.

Block by block (about a MiB of a file at a time) with pyarrow's JSON/CSV/Parquet readers,
each block's rows sent to their part by request id (parts.py), so no file and no window is
ever held whole; the request log's `features` are skipped by the JSON reader, never built.
The join itself is join.py; `last_per_id` is the de-duplication both sides use.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from .parts import Parts

LABELS_FILE = "labels.jsonl"
_ROTATED = re.compile(r"^requests\.jsonl(?:\.(\d+))?$")
_ID_RE = r"^[A-Za-z0-9._:-]{1,140}$"


class MonitorInputError(ValueError):
    """Bad input (exit 2): the message names the file and, where there is one, the row."""


def _files(path: Path, pattern: re.Pattern[str] | None) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise MonitorInputError(f"{path}: no such file or folder")
    if pattern is None:
        return sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".csv", ".parquet"))
    return sorted((p for p in path.iterdir() if pattern.match(p.name)),
                  key=lambda p: -int(pattern.match(p.name).group(1) or 0))  # type: ignore[union-attr]


def prediction_files(path: Path) -> list[Path]:
    """The request log's files, oldest first (requests.jsonl.N .. .1, requests.jsonl)."""
    return _files(path, _ROTATED if path.is_dir() else None)


def label_files(path: Path) -> list[Path]:
    """labels.jsonl, a CSV/Parquet/JSONL file, or the folder's files of those kinds."""
    return [path] if path.is_file() else (
        [path / LABELS_FILE] if (path / LABELS_FILE).exists() else _files(path, None))


PREDICTIONS = pa.schema([("id", pa.string()), ("ts", pa.timestamp("s")),
                         ("prediction", pa.string()), ("score", pa.float64())])
LABELS = pa.schema([("id", pa.string()), ("label", pa.string()),
                    ("labelled_at", pa.timestamp("s"))])


class _Restart(Exception):
    """Read every file again: with parse_utc's slow path for the times (`slow`), or with
    `infer` (a JSON file whose types changed past the head the fast read sampled) read whole
    with inferred types. Both are what reading each file whole gave, so results never depend
    on where a block boundary fell."""

    def __init__(self, slow: bool = False, infer: Path | None = None) -> None:
        super().__init__()
        self.slow, self.infer = slow, infer


@dataclass(frozen=True)
class _How:
    slow: bool = False
    infer: frozenset[Path] = frozenset()

    def after(self, r: _Restart) -> _How:
        return _How(self.slow or r.slow, self.infer | ({r.infer} if r.infer else set()))


def _blocks(file: Path, columns: Iterable[str], how: _How) -> Iterator[tuple[pa.Table, int]]:
    """The file's wanted columns (those it has) block by block, with each block's first row
    (0-based) in the file: a block is about a MiB of the file, so a file of any size costs
    a block in flight plus its wanted columns."""
    wanted = list(columns)
    row = 0
    try:
        if file.suffix == ".parquet":
            source = pq.ParquetFile(file)
            present = [c for c in wanted if c in source.schema_arrow.names]
            batches: Iterable[pa.RecordBatch] = source.iter_batches(_ROWS, columns=present)
        elif file.suffix == ".csv":
            header = _csv_header(file)
            present = [c for c in wanted if c in header]
            batches = pacsv.open_csv(file, convert_options=pacsv.ConvertOptions(
                column_types={"id": pa.string(), "label": pa.string(),
                              "labelled_at": pa.string()},
                include_columns=present or header[:1]))  # [] would mean every column
        elif file.stat().st_size == 0:
            return
        elif file in how.infer or (fast := _json_fast(file, wanted)) is None:
            batches = pajson.read_json(file, parse_options=pajson.ParseOptions(
                explicit_schema=pa.schema([(c, pa.string()) for c in wanted
                                           if c not in _TYPED]),
                unexpected_field_behavior="infer")).to_batches()
        else:
            batches = fast
        for batch in batches:
            table = pa.Table.from_batches([batch])
            yield table.select([c for c in wanted if c in table.column_names]), row
            row += batch.num_rows
    except pa.ArrowInvalid as exc:
        if file.suffix not in (".csv", ".parquet") and file not in how.infer:
            # JSON whose types change past the sampled head: read it whole, inferring
            raise _Restart(infer=file) from None
        raise MonitorInputError(f"{file}: cannot read: {str(exc).splitlines()[0][:300]}") \
            from None
    except OSError as exc:
        raise MonitorInputError(f"{file}: cannot read: {str(exc).splitlines()[0][:300]}") \
            from None


def _csv_header(file: Path) -> list[str]:
    with file.open(newline="", encoding="utf-8", errors="replace") as fh:
        return next(csv.reader(fh), [])


def _read_one(file: Path, columns: Iterable[str]) -> pa.Table:
    """The file's wanted columns, all of it at once (`mlgen feedback`'s one file)."""
    wanted = list(columns)
    how = _How()
    while True:
        try:
            tables = [t for t, _ in _blocks(file, wanted, how)]
            break
        except _Restart as r:
            how = how.after(r)
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in wanted})
    return pa.concat_tables(tables, promote_options="permissive")


_TYPED = ("prediction", "score", "label")  # JSON types vary (a class name, 0/1, a float)
_HEAD = 1 << 16
_BLOCK = 1 << 20  # the JSON reader's block: what a file costs in flight beyond its columns
_ROWS = 1 << 16  # Parquet rows per block


def _json_fast(file: Path, wanted: list[str]) -> Iterator[pa.RecordBatch] | None:
    """Only the wanted columns, with the typed ones' types taken from the file's first lines,
    everything else (the `features` object) skipped unparsed: half the time of inferring it.
    None when the file's first lines do not give the types (a typed column missing or all
    null there): the caller infers them from the whole file then. A type that changes further
    down raises ArrowInvalid while reading (then: _Restart, inferred)."""
    with file.open("rb") as fh:
        head = fh.read(_HEAD)
    cut = head.rfind(b"\n")
    if cut < 0:
        return None
    strings = [(c, pa.string()) for c in wanted if c not in _TYPED]
    try:
        sample = pajson.read_json(pa.BufferReader(head[:cut + 1]),
                                  parse_options=pajson.ParseOptions(
                                      explicit_schema=pa.schema(strings),
                                      unexpected_field_behavior="infer"))
    except pa.ArrowInvalid:
        return None
    fields = list(strings)
    for c in wanted:
        if c == "score":
            fields.append((c, pa.float64()))
        elif c in _TYPED:
            if c not in sample.column_names or not _plain(sample[c].type):
                return None
            fields.append((c, sample[c].type))
    # Block by block: only the wanted columns of the file are built, never its whole text at
    # once (a rotated file can be hundreds of MB). The same parser as read_json.
    reader: Iterator[pa.RecordBatch] = pajson.open_json(
        file, read_options=pajson.ReadOptions(block_size=_BLOCK),
        parse_options=pajson.ParseOptions(explicit_schema=pa.schema(fields),
                                          unexpected_field_behavior="ignore"))
    return reader


def _plain(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t)
                or pa.types.is_boolean(t))


def _as_string(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.cast(pa.string())
    if pa.types.is_floating(col.type):  # 1.0 and 1 are the same class
        whole = pc.equal(col, pc.floor(col))
        if pc.all(pc.or_kleene(whole, pc.is_null(col))).as_py():
            try:
                return col.cast(pa.int64()).cast(pa.string())
            except pa.ArrowInvalid:  # past int64: arrow's float text
                pass
    return col.cast(pa.string())


def split_predictions(path: Path, model: str | None, parts: int,
                      spill_dir: Path | None = None) -> tuple[Parts, int]:
    """The log's rows (id, ts, prediction, score) split by id into `parts`, in log order
    within each part, and the number of rows without an id (logged before request ids
    existed: counted, not kept). Rows of another model are left out; rows naming no model
    are kept (a log from before the field, or one model's own log)."""
    files = prediction_files(path)
    return _split(lambda how: _prediction_blocks(files, model, how), PREDICTIONS, parts,
                  spill_dir)


def _split(blocks: Callable[[_How], Iterator[pa.Table]], schema: pa.Schema, parts: int,
           spill_dir: Path | None) -> tuple[Parts, int]:
    """Every block into its parts, and the number of rows without an id (left out); read
    again from the start when a block asks for it (_Restart)."""
    how = _How()
    while True:
        store = Parts(parts, schema, spill_dir)
        try:
            no_id = 0
            for t in blocks(how):
                missing = t["id"].null_count
                no_id += missing
                store.add(t.filter(pc.is_valid(t["id"])) if missing else t)
            return store, no_id
        except _Restart as r:
            store.close()
            how = how.after(r)
        except BaseException:
            store.close()
            raise


def _prediction_blocks(files: list[Path], model: str | None, how: _How) -> Iterator[pa.Table]:
    for file in files:
        for t, _ in _blocks(file, ("id", "ts", "model", "prediction", "score"), how):
            if t.num_rows == 0:
                continue
            if model and "model" in t.column_names:
                mine = pc.fill_null(pc.equal(t["model"], model), True)
                if not pc.all(mine).as_py():  # one model per log is the rule: no copy then
                    t = t.filter(mine)
            if "prediction" not in t.column_names:
                raise MonitorInputError(f"{file}: no 'prediction' field in the request log")
            n = t.num_rows
            yield pa.table({
                "id": (t["id"].cast(pa.string()) if "id" in t.column_names
                       else pa.nulls(n, pa.string())),
                "ts": _times(t["ts"] if "ts" in t.column_names else pa.nulls(n, pa.string()),
                             how),
                "prediction": _as_string(t["prediction"]),
                "score": (t["score"].cast(pa.float64()) if "score" in t.column_names
                          else pa.nulls(n, pa.float64()))}, schema=PREDICTIONS)


def _times(col: pa.ChunkedArray | pa.Array, how: _How) -> pa.ChunkedArray | pa.Array:
    """A block's times: parse_utc's one-pass path, or its slow path for every block once any
    block needs it (as parse_utc on the whole column does), so blocks never change a time."""
    if how.slow:
        return _utc_slow(col)
    fast = _utc_fast(col)
    if fast is None:
        raise _Restart(slow=True)
    return fast


def read_predictions(path: Path, model: str | None) -> tuple[pa.Table, int]:
    """Every row of the log (id, ts, prediction, score), in memory: see split_predictions."""
    store, no_id = split_predictions(path, model, 1)
    with store:
        return store.table(0), no_id


def _utc_fast(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array | None:
    """parse_utc's one-pass path, or None when parse_utc would take its slow path."""
    try:
        return col.cast(pa.string()).cast(pa.timestamp("ns", "UTC")).cast(pa.timestamp("s"),
                                                                         safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _utc_slow(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    col = col.cast(pa.string())
    whole = pc.replace_substring_regex(col, r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+",
                                       r"\1")
    aware = pc.strptime(whole, format="%Y-%m-%dT%H:%M:%S%z", unit="s", error_is_null=True)
    naive = pc.strptime(whole, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
    return pc.coalesce(aware.cast(pa.timestamp("s")), naive)


def parse_utc(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """RFC 3339 times as UTC seconds (timestamp[s], fractions dropped): `Z` or a `+HH:MM`
    offset, or none (then UTC is assumed); anything else is null."""
    fast = _utc_fast(col)  # the common case, every time with Z or an offset: one pass
    return fast if fast is not None else _utc_slow(col)


@dataclass(frozen=True)
class Labels:
    table: pa.Table  # id, label (string), labelled_at (timestamp or null), one row per id
    rows: int
    duplicates: int


def read_labels(path: Path, *, numeric: bool) -> Labels:
    """Labels from labels.jsonl, a CSV/Parquet file or a folder of them, in memory, one row
    per id (see split_labels); bad rows raise MonitorInputError naming the file and row."""
    store = split_labels(path, numeric=numeric, parts=1)
    with store:
        table = store.table(0)
    rows = table.num_rows
    # The last label given for an id wins (a corrected outcome); the others are duplicates.
    table = last_per_id(table)
    return Labels(table, rows, rows - table.num_rows)


def split_labels(path: Path, *, numeric: bool, parts: int,
                 spill_dir: Path | None = None) -> Parts:
    """Every label row (id, label, labelled_at) split by id into `parts`, in the order
    read within each part; bad rows raise MonitorInputError naming the file and the (0-based
    data) row."""
    files = label_files(path)
    store, _ = _split(lambda how: _label_blocks(files, numeric, how), LABELS, parts, spill_dir)
    return store  # every label has an id: check_labels refuses the others


def _label_blocks(files: list[Path], numeric: bool, how: _How) -> Iterator[pa.Table]:
    for file in files:
        for t, row in _blocks(file, ("id", "label", "labelled_at"), how):
            if t.num_rows == 0:
                continue
            check_labels(t, file, numeric=numeric, first_row=row)
            n = t.num_rows
            at = (t["labelled_at"] if "labelled_at" in t.column_names
                  else pa.nulls(n, pa.string()))
            yield pa.table({"id": t["id"].cast(pa.string()), "label": _as_string(t["label"]),
                            "labelled_at": _times(at, how)}, schema=LABELS)


def last_per_id(table: pa.Table) -> pa.Table:
    """The last row of each id (ids not null), in the table's order. A sort of the ids'
    dictionary codes: a fraction of a group_by + self-join on the strings."""
    if table.num_rows == 0:
        return table
    codes = table["id"].combine_chunks().dictionary_encode().indices.to_numpy()
    _, first_from_end = np.unique(codes[::-1], return_index=True)
    if len(first_from_end) == table.num_rows:
        return table
    return table.take(np.sort(table.num_rows - 1 - first_from_end))


def check_labels(t: pa.Table, file: Path, *, numeric: bool, first_row: int = 0) -> None:
    for name in ("id", "label"):
        if name not in t.column_names:
            raise MonitorInputError(f"{file}: no column {name!r}; labels need columns id,label "
                                    "(and optionally labelled_at)")
    ids = t["id"].cast(pa.string())
    bad = pc.invert(pc.fill_null(pc.match_substring_regex(ids, _ID_RE), False))
    _first_bad(bad, file, "'id' is empty or not a request id (A-Z a-z 0-9 . _ : -)", first_row)
    _first_bad(pc.is_null(t["label"]), file, "'label' is empty", first_row)
    if numeric:
        try:
            values = t["label"].cast(pa.float64())
        except pa.ArrowInvalid:
            values = None
        if values is None:
            strings = t["label"].cast(pa.string())
            ok = pc.match_substring_regex(strings, r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
            _first_bad(pc.invert(ok), file, "'label' is not a number (a regression model)",
                       first_row)
        else:
            _first_bad(pc.invert(pc.is_finite(values)), file, "'label' is not a finite number",
                       first_row)


def _first_bad(mask: pa.ChunkedArray | pa.Array, file: Path, message: str,
               first_row: int = 0) -> None:
    mask = pc.fill_null(mask, True)
    if pc.any(mask).as_py():
        row = first_row + pc.index(mask, True).as_py()
        raise MonitorInputError(f"{file}: row {row}: {message}")
