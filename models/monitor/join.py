"""The window's labelled predictions: labels joined to the logged predictions, part by part.

Both sides are split by a hash of the request id (parts.py), so an id's predictions and labels
are in the same part: de-duplicating (the last prediction of a retried request, the last label
of a corrected outcome) and joining one part at a time gives what doing it on everything gives,
and memory holds one part. What is kept across parts is only what the metrics need, as
numpy columns: each labelled prediction's time, score, and label and prediction (class codes,
or numbers for a regression), about 24 bytes a row. The metrics (metrics.py) do not depend on
the rows' order, so neither the number of parts nor the files' order changes a report.
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
    """One row per labelled prediction in the window, as numpy columns."""

    ts: np.ndarray  # int64 seconds (naive UTC)
    score: np.ndarray  # float64, NaN where the log has no score
    label: np.ndarray  # int32 codes into `classes` (-1: none), float64 for a regression
    prediction: np.ndarray  # the same
    classes: list[str] = field(default_factory=list)  # the codes' class names
    score_missing: int = 0  # rows whose score is null
    counts: dict[str, int] = field(default_factory=dict)
    newest_label: datetime | None = None  # newest labelled_at of the (de-duplicated) labels

    @property
    def rows(self) -> int:
        return len(self.ts)


class _Columns:
    """The labelled rows of each part, compacted as they come."""

    def __init__(self, numeric: bool) -> None:
        self.numeric = numeric
        self.classes: dict[str, int] = {}
        self.parts: dict[str, list[np.ndarray]] = {c: [] for c in _NAMES}
        self.score_missing = 0

    def add(self, used: pa.Table) -> None:
        if used.num_rows == 0:
            return
        self.parts["ts"].append(used["ts"].cast(pa.int64()).to_numpy())
        self.score_missing += used["score"].null_count
        self.parts["score"].append(
            pc.fill_null(used["score"], np.nan).to_numpy(zero_copy_only=False))
        for name in ("label", "prediction"):
            self.parts[name].append(self._values(used[name]))

    def _values(self, col: pa.ChunkedArray) -> np.ndarray:
        if self.numeric:
            try:
                return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False),
                                  np.float64)
            except pa.ArrowInvalid as exc:
                raise MonitorInputError(
                    f"a regression prediction or label is not a number: {exc}") from None
        coded = col.combine_chunks().dictionary_encode()
        names = coded.dictionary.to_pylist()
        to_global = np.array([self.classes.setdefault(n, len(self.classes)) for n in names]
                             + [-1], np.int32)
        indices = pc.fill_null(coded.indices, len(names)).to_numpy()
        codes: np.ndarray = to_global[indices]
        return codes

    def _dtype(self, name: str) -> type[np.generic]:
        if name == "ts":
            return np.int64
        return np.float64 if name == "score" or self.numeric else np.int32

    def joined(self, counts: dict[str, int], newest: datetime | None) -> Joined:
        columns = {}
        for name in _NAMES:  # one column's parts freed before the next is joined
            chunks = self.parts.pop(name)
            columns[name] = np.concatenate(chunks) if chunks else np.zeros(0, self._dtype(name))
            del chunks
        return Joined(columns["ts"], columns["score"], columns["label"],
                      columns["prediction"], list(self.classes), self.score_missing,
                      counts, newest)


_NAMES = ("ts", "score", "label", "prediction")


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
            used = _Columns(numeric)
            newest: datetime | None = None
            for i in range(parts):
                part, part_newest = _join_part(pred_parts.table(i), label_parts.table(i),
                                               ts_start, ts_end, ts_due, counts)
                used.add(part)
                del part
                if part_newest is not None and (newest is None or part_newest > newest):
                    newest = part_newest
    return used.joined(counts, newest)


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
                     **{c: preds[c].take(taken) for c in ("ts", "prediction", "score")}})
    counts["labelled"] += used.num_rows
    return used, newest
