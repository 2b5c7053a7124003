"""The server's JSON-lines request logs, read in chunks (see readers.py for the contract).

pyarrow's JSON reader parses whole pieces of lines on its threads; a piece it rejects (a value
of the wrong type, a malformed line) is read again by the tolerant Python reader, which
records each bad line in the ReadLog instead of stopping the run.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
from mlgen.models.drift.readers import (
    LOG_FIELDS,
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


def read_jsonl(file: Path, kinds: Mapping[str, str], chunk_rows: int, log: ReadLog
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
        if all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
        ):
            return pa.array(values, pa.float64())
        return pa.array([None if v is None else json.dumps(v) if not isinstance(v, str) else v
                         for v in values], pa.string())
    from mlgen.models.profile import category_key

    return pa.array([None if v is None else category_key(v) for v in values], pa.string())
