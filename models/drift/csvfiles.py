"""CSV windows (a warehouse export), read in chunks (see readers.py for the contract).

A file is parsed in 16 MB pieces of whole lines on pyarrow's threads; a piece with values of
the wrong type is read again as text on its own, and `.csv.gz` keeps the streaming reader.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
from mlgen.models.drift.readers import (
    Problem,
    ReadLog,
    _arrow_types,
    _carried,
    _carried_types,
    _group,
    _line_pieces,
    _note_extra,
    _short,
)


def read_csv(file: Path, kinds: Mapping[str, str], chunk_rows: int, log: ReadLog
         ) -> Iterator[dict[str, pa.ChunkedArray]]:
    return _group(_csv_blocks(file, kinds, log), chunk_rows)


def _csv_blocks(file: Path, kinds: Mapping[str, str], log: ReadLog
                ) -> Iterator[dict[str, pa.Array | pa.ChunkedArray]]:
    if file.name.endswith(".gz"):
        return _csv_stream(file, kinds, log)
    return _csv_pieces(file, kinds, log)


CSV_PIECE = 16 << 20


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
