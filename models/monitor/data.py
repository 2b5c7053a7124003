"""Reading predictions (the request log) and labels (labels.jsonl, CSV, Parquet) as arrow.

Columnar all the way: pyarrow's JSON/CSV/Parquet readers, then arrow compute for the window,
a dictionary-code sort for the duplicates and one hash lookup for the join, so 1M x 1M rows
take seconds (benchmarks/monitor_bench.py) and memory stays a few columns wide: the request
log's `features` are skipped by the JSON reader, never built.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

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


def _read_one(file: Path, columns: Iterable[str]) -> pa.Table:
    wanted = list(columns)
    try:
        if file.suffix == ".parquet":
            table = pq.read_table(file)
        elif file.suffix == ".csv":
            table = pacsv.read_csv(file, convert_options=pacsv.ConvertOptions(
                column_types={"id": pa.string(), "label": pa.string(),
                              "labelled_at": pa.string()}))
        else:
            if file.stat().st_size == 0:
                return pa.table({c: pa.array([], pa.string()) for c in wanted})
            fast = _read_json_fast(file, wanted)
            table = fast if fast is not None else pajson.read_json(
                file, parse_options=pajson.ParseOptions(
                    explicit_schema=pa.schema([(c, pa.string()) for c in wanted
                                               if c not in _TYPED]),
                    unexpected_field_behavior="infer"))
    except (pa.ArrowInvalid, OSError) as exc:
        raise MonitorInputError(f"{file}: cannot read: {str(exc).splitlines()[0][:300]}") from None
    present = [c for c in wanted if c in table.column_names]
    return table.select(present)


_TYPED = ("prediction", "score", "label")  # JSON types vary (a class name, 0/1, a float)
_HEAD = 1 << 16
_BLOCK = 1 << 20  # the JSON reader's block: what a file costs in flight beyond its columns


def _read_json_fast(file: Path, wanted: list[str]) -> pa.Table | None:
    """Only the wanted columns, with the typed ones' types taken from the file's first lines,
    everything else (the `features` object) skipped unparsed: half the time of inferring it.
    None when the fast read cannot give what inferring the whole file would (a column missing
    from the first lines, all null, or changing type further down): the caller infers then."""
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
    try:
        # Block by block: only the wanted columns of the file are built, never its whole
        # text at once (a rotated file can be hundreds of MB). The same parser as read_json.
        reader = pajson.open_json(file, read_options=pajson.ReadOptions(block_size=_BLOCK),
                                  parse_options=pajson.ParseOptions(
            explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore"))
        table = pa.Table.from_batches(list(reader), schema=reader.schema)
    except pa.ArrowInvalid:
        return None
    # Absent and all-null look alike here; inferring tells them apart (model: no filter).
    if any(table[c].null_count == table.num_rows for c in wanted if c in ("model", *_TYPED)
           and c != "score"):
        return None
    return table


def _plain(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t)
                or pa.types.is_boolean(t))


def _as_string(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.cast(pa.string())
    if pa.types.is_floating(col.type):  # 1.0 and 1 are the same class
        whole = pc.equal(col, pc.floor(col))
        if pc.all(pc.or_kleene(whole, pc.is_null(col))).as_py():
            return col.cast(pa.int64()).cast(pa.string())
    return col.cast(pa.string())


def read_predictions(path: Path, model: str | None) -> tuple[pa.Table, int]:
    """id, ts (timestamp), prediction (string), score (float, may be null); rows without an id
    (logged before request ids existed) are counted, not kept."""
    files = _files(path, _ROTATED if path.is_dir() else None)
    # Times parsed file by file, so a window's `ts` strings (24 bytes a row) never all sit in
    # memory; when a file needs parse_utc's slow path the whole column must take it (that is
    # what parsing the concatenated column did), so the files are read again, as before.
    try:
        return _read_predictions(files, model, per_file=True)
    except _SlowTimes:
        return _read_predictions(files, model, per_file=False)


class _SlowTimes(Exception):
    """A file's times need parse_utc's slow path: parse the whole column at once instead."""


def _read_predictions(files: list[Path], model: str | None, *,
                      per_file: bool) -> tuple[pa.Table, int]:
    parts = []
    for file in files:
        t = _read_one(file, ("id", "ts", "model", "prediction", "score"))
        if t.num_rows == 0:
            continue
        if model and "model" in t.column_names:
            mine = pc.fill_null(pc.equal(t["model"], model), False)
            if not pc.all(mine).as_py():  # one model per log is the rule: no copy then
                t = t.filter(mine)
        ts = t["ts"]
        if per_file:
            ts = _utc_fast(ts)
            if ts is None:
                raise _SlowTimes
        cols = {"id": t["id"] if "id" in t.column_names else pa.nulls(t.num_rows, pa.string()),
                "ts": ts, "prediction": _as_string(t["prediction"])}
        cols["score"] = (t["score"].cast(pa.float64()) if "score" in t.column_names
                         else pa.nulls(t.num_rows, pa.float64()))
        parts.append(pa.table(cols))
        del t, ts, cols  # the file's raw columns go before the next file is read
    if not parts:
        return _empty_predictions(), 0
    table = pa.concat_tables(parts)
    del parts
    no_id = table["id"].null_count
    table = table.filter(pc.is_valid(table["id"]))
    if per_file:
        return table, no_id
    return table.set_column(1, "ts", parse_utc(table["ts"])), no_id


def _utc_fast(col: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """parse_utc's one-pass path on one file's column, or None when parse_utc would take its
    slow path. Element by element the same as parse_utc on the concatenated column whenever
    every file's column passes (that column passes exactly then)."""
    try:
        return col.cast(pa.string()).cast(pa.timestamp("ns", "UTC")).cast(pa.timestamp("s"),
                                                                         safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def parse_utc(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """RFC 3339 times as UTC seconds (timestamp[s], fractions dropped): `Z` or a `+HH:MM`
    offset, or none (then UTC is assumed); anything else is null."""
    fast = _utc_fast(col)  # the common case, every time with Z or an offset: one pass
    if fast is not None:
        return fast
    col = col.cast(pa.string())
    whole = pc.replace_substring_regex(col, r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+",
                                       r"\1")
    aware = pc.strptime(whole, format="%Y-%m-%dT%H:%M:%S%z", unit="s", error_is_null=True)
    naive = pc.strptime(whole, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
    return pc.coalesce(aware.cast(pa.timestamp("s")), naive)


def _empty_predictions() -> pa.Table:
    return pa.table({"id": pa.array([], pa.string()), "ts": pa.array([], pa.timestamp("s")),
                     "prediction": pa.array([], pa.string()), "score": pa.array([], pa.float64())})


@dataclass(frozen=True)
class Labels:
    table: pa.Table  # id, label (string), labelled_at (timestamp or null), one row per id
    rows: int
    duplicates: int


def read_labels(path: Path, *, numeric: bool) -> Labels:
    """Labels from labels.jsonl, a CSV/Parquet file or a folder of them; bad rows raise
    MonitorInputError naming the file and the (0-based data) row."""
    files = [path] if path.is_file() else (
        [path / LABELS_FILE] if (path / LABELS_FILE).exists() else _files(path, None))
    try:  # labelled_at parsed file by file, as read_predictions does with ts
        return _read_labels(files, numeric=numeric, per_file=True)
    except _SlowTimes:
        return _read_labels(files, numeric=numeric, per_file=False)


def _read_labels(files: list[Path], *, numeric: bool, per_file: bool) -> Labels:
    parts = []
    for file in files:
        t = _read_one(file, ("id", "label", "labelled_at"))
        if t.num_rows == 0:
            continue
        check_labels(t, file, numeric=numeric)
        at = (t["labelled_at"].cast(pa.string()) if "labelled_at" in t.column_names
              else pa.nulls(t.num_rows, pa.string()))
        if per_file:
            at = _utc_fast(at)
            if at is None:
                raise _SlowTimes
        parts.append(pa.table({"id": t["id"].cast(pa.string()), "label": _as_string(t["label"]),
                               "labelled_at": at}))
        del t, at
    if not parts:
        empty = pa.table({"id": pa.array([], pa.string()), "label": pa.array([], pa.string()),
                          "labelled_at": pa.array([], pa.timestamp("s"))})
        return Labels(empty, 0, 0)
    table = pa.concat_tables(parts)
    del parts
    if not per_file:
        table = table.set_column(2, "labelled_at", parse_utc(table["labelled_at"]))
    rows = table.num_rows
    # The last label given for an id wins (a corrected outcome); the others are duplicates.
    table = last_per_id(table)
    return Labels(table, rows, rows - table.num_rows)


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


def check_labels(t: pa.Table, file: Path, *, numeric: bool) -> None:
    for name in ("id", "label"):
        if name not in t.column_names:
            raise MonitorInputError(f"{file}: no column {name!r}; labels need columns id,label "
                                    "(and optionally labelled_at)")
    ids = t["id"].cast(pa.string())
    bad = pc.invert(pc.fill_null(pc.match_substring_regex(ids, _ID_RE), False))
    _first_bad(bad, file, "'id' is empty or not a request id (A-Z a-z 0-9 . _ : -)")
    _first_bad(pc.is_null(t["label"]), file, "'label' is empty")
    if numeric:
        try:
            values = t["label"].cast(pa.float64())
        except pa.ArrowInvalid:
            values = None
        if values is None:
            strings = t["label"].cast(pa.string())
            ok = pc.match_substring_regex(strings, r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
            _first_bad(pc.invert(ok), file, "'label' is not a number (a regression model)")
        else:
            _first_bad(pc.invert(pc.is_finite(values)), file, "'label' is not a finite number")


def _first_bad(mask: pa.ChunkedArray | pa.Array, file: Path, message: str) -> None:
    mask = pc.fill_null(mask, True)
    if pc.any(mask).as_py():
        row = pc.index(mask, True).as_py()
        raise MonitorInputError(f"{file}: row {row}: {message}")
