"""`mlgen feedback`: append a file of labels to the labels store (labels.jsonl), with counts.

The store is the same labels.jsonl the server's feedback endpoint appends to, written the same
way (one O_APPEND write under the request log's lock), so a file from the warehouse and labels
posted to the server end up in one place for `mlgen monitor`.
"""
from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .data import LABELS_FILE, MonitorInputError, _read_one, check_labels, read_predictions

CHUNK = 50_000


def ingest(file: Path, store: Path, predictions: Path, *, numeric: bool,
           window: timedelta | None, model: str | None, now: datetime | None = None,
           dry_run: bool = False) -> dict[str, Any]:
    """Validate `file`, count unknown/duplicate/late ids, append to store/labels.jsonl."""
    if not file.is_file() or file.suffix not in (".csv", ".parquet", ".jsonl"):
        raise MonitorInputError(f"{file}: expected a .csv, .parquet or .jsonl file of id,label")
    t = _read_one(file, ("id", "label", "labelled_at"))
    check_labels(t, file, numeric=numeric)
    ids = t["id"].cast(pa.string())
    unique = pc.unique(ids)
    dup_in_file = t.num_rows - len(unique)
    target = store / LABELS_FILE
    already = 0
    if target.exists() and target.stat().st_size:
        old = _read_one(target, ("id",))["id"].cast(pa.string())
        already = int(pc.sum(pc.is_in(unique, value_set=pc.unique(old))).as_py() or 0)
    preds, _ = read_predictions(predictions, model) if predictions.exists() else (None, 0)
    unknown = late = 0
    if preds is not None:
        known = pc.is_in(ids, value_set=preds["id"])
        unknown = t.num_rows - int(pc.sum(known).as_py() or 0)
        if window is not None:
            start = pa.scalar(((now or datetime.now(UTC)) - window).replace(tzinfo=None),
                              pa.timestamp("s"))
            old_ids = preds.filter(pc.fill_null(pc.less(preds["ts"], start), False))["id"]
            late = int(pc.sum(pc.is_in(ids, value_set=old_ids)).as_py() or 0)
    else:
        unknown = t.num_rows
    counts = {"rows": t.num_rows, "duplicates": dup_in_file + already, "unknown_ids": unknown,
              "late": late, "written": 0, "store": str(target)}
    if not dry_run and t.num_rows:
        counts["written"] = _append(t, store)
    return counts


def _append(t: pa.Table, store: Path) -> int:
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    ids = t["id"].cast(pa.string()).to_pylist()
    labels = t["label"].to_pylist()
    at = (t["labelled_at"].cast(pa.string()).to_pylist() if "labelled_at" in t.column_names
          else [None] * t.num_rows)
    store.mkdir(parents=True, exist_ok=True)
    lock = os.open(store / ".requests.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fd = os.open(store / LABELS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for start in range(0, len(ids), CHUNK):
                lines = [json.dumps({"id": i, "label": lab, "labelled_at": a or stamp},
                                    separators=(",", ":"), ensure_ascii=False, default=str)
                         for i, lab, a in zip(ids[start:start + CHUNK],
                                              labels[start:start + CHUNK],
                                              at[start:start + CHUNK])]
                os.write(fd, ("\n".join(lines) + "\n").encode())
        finally:
            os.close(fd)
    finally:
        os.close(lock)
    return len(ids)
