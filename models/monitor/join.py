"""The window's labelled predictions: labels joined to the logged predictions, part by part.

Both sides are split by a hash of the request id (parts.py), so an id's predictions and labels
are in the same part: de-duplicating (the last prediction of a retried request, the last label
of a corrected outcome) and joining one part at a time gives what doing it on everything gives,
and memory holds one part. What is kept across parts is only what the metrics need: each
labelled prediction's label, time, prediction and score, put back in label order at the end.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .data import (
    MonitorInputError,
    label_files,
    last_per_id,
    prediction_files,
    split_labels,
    split_predictions,
)
from .parts import parts_for

COUNTS = ("predictions_in_window", "expected", "labels_read", "labelled", "unknown_ids",
          "duplicate_labels", "late_labels", "predictions_without_id",
          "duplicate_prediction_ids")


@dataclass
class Joined:
    used: pa.Table  # label, ts, prediction, score: one row per labelled prediction in window
    counts: dict[str, int] = field(default_factory=dict)
    newest_label: datetime | None = None  # newest labelled_at of the (de-duplicated) labels


def how_many_parts(predictions: Path, labels: Path) -> int:
    """From the input files' sizes: one part (all in memory) for a small window."""
    return parts_for(list(dict.fromkeys(prediction_files(predictions) + label_files(labels))))


def join(predictions: Path, labels: Path, *, model: str | None, numeric: bool,
         start: datetime | None, end: datetime, due_by: datetime, parts: int,
         spill_dir: Path | None = None) -> Joined:
    """Predictions with ts in [start, end] (start None: no lower bound), due (labels
    expected) when ts <= due_by; times are naive UTC."""
    try:
        return _join(predictions, labels, model=model, numeric=numeric, start=start, end=end,
                     due_by=due_by, parts=parts, spill_dir=spill_dir)
    except OSError as exc:  # reading errors are MonitorInputError already: this is scratch
        where = spill_dir or Path(tempfile.gettempdir())
        raise MonitorInputError(f"{where}: cannot write the join's scratch files "
                                f"({exc.strerror or exc}); free space there or pass "
                                "--spill-dir") from None


def _join(predictions: Path, labels: Path, *, model: str | None, numeric: bool,
          start: datetime | None, end: datetime, due_by: datetime, parts: int,
          spill_dir: Path | None) -> Joined:
    ts_end, ts_due = _scalar(end), _scalar(due_by)
    ts_start = _scalar(start) if start is not None else None
    pred_parts, no_id = split_predictions(predictions, model, parts, spill_dir)
    with pred_parts:
        label_parts = split_labels(labels, numeric=numeric, parts=parts, spill_dir=spill_dir)
        with label_parts:
            counts = dict.fromkeys(COUNTS, 0)
            counts["predictions_without_id"] = no_id
            used: list[pa.Table] = []
            newest: datetime | None = None
            for i in range(parts):
                part, part_newest = _join_part(pred_parts.table(i), label_parts.table(i),
                                               ts_start, ts_end, ts_due, counts)
                if part.num_rows:
                    used.append(part)
                if part_newest is not None and (newest is None or part_newest > newest):
                    newest = part_newest
    if not used:
        return Joined(_EMPTY, counts, newest)
    # Back in label order (what joining everything at once gives, so sums and the interval
    # draws never depend on the number of parts), one column at a time: the parts' copy of a
    # column goes as soon as its ordered copy is made.
    order = np.argsort(pa.chunked_array([t["seq"] for t in used]).to_numpy(), kind="stable")
    columns = {c: [t[c] for t in used] for c in _EMPTY.column_names}
    del used
    ordered = {}
    for c in _EMPTY.column_names:
        ordered[c] = pa.chunked_array(
            [chunk for col in columns.pop(c) for chunk in col.chunks],
            _EMPTY.schema.field(c).type).take(order)
    return Joined(pa.table(ordered), counts, newest)


_EMPTY = pa.table({"label": pa.array([], pa.string()), "ts": pa.array([], pa.timestamp("s")),
                   "prediction": pa.array([], pa.string()),
                   "score": pa.array([], pa.float64())})


def _scalar(dt: datetime) -> pa.Scalar:
    return pa.scalar(dt.replace(tzinfo=None), pa.timestamp("s"))


def _join_part(preds: pa.Table, labels: pa.Table, start: pa.Scalar | None, end: pa.Scalar,
               due_by: pa.Scalar, counts: dict[str, int]) -> tuple[pa.Table, datetime | None]:
    rows = preds.num_rows
    preds = last_per_id(preds)  # a retried request logged twice: its last prediction counts
    counts["duplicate_prediction_ids"] += rows - preds.num_rows
    counts["labels_read"] += labels.num_rows
    rows = labels.num_rows
    labels = last_per_id(labels)  # the last label for an id wins (a corrected outcome)
    counts["duplicate_labels"] += rows - labels.num_rows
    newest = pc.max(labels["labelled_at"]).as_py() if labels.num_rows else None

    ts = preds["ts"]
    in_window = pc.less_equal(ts, end)
    if start is not None:
        in_window = pc.and_(in_window, pc.greater_equal(ts, start))
    in_window = pc.fill_null(in_window, False)
    due = pc.fill_null(pc.less_equal(ts, due_by), False)
    counts["predictions_in_window"] += int(pc.sum(in_window).as_py() or 0)
    counts["expected"] += int(pc.sum(pc.and_(in_window, due)).as_py() or 0)

    # The left join of labels to predictions, both one row per id now: the row of each
    # label's id among the predictions (null: never logged), one hash lookup.
    pos = pc.index_in(labels["id"], value_set=preds["id"].combine_chunks())
    known = pc.is_valid(pos)
    counts["unknown_ids"] += labels.num_rows - int(pc.sum(known).as_py() or 0)
    inside = pc.fill_null(pc.take(in_window, pos), False)
    counts["late_labels"] += int(pc.sum(pc.and_(known, pc.invert(inside))).as_py() or 0)
    taken = pos.filter(inside)
    used = pa.table({"label": labels["label"].filter(inside),
                     **{c: preds[c].take(taken) for c in ("ts", "prediction", "score")},
                     "seq": labels["seq"].filter(inside)})
    counts["labelled"] += used.num_rows
    return used, newest
