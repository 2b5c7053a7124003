"""`POST /v2/models/{name}/feedback`: ground-truth labels for logged predictions.

Body: a JSON list (or `{"labels": [...]}`) of `{"id": str, "label": value}` objects, at most
MAX_LABELS. Accepted rows are appended to `labels.jsonl` beside the request log, one line
`{"id", "label", "labelled_at"}` each, written by one `write()` on an O_APPEND descriptor under
the request log's lock, so several workers never interleave half lines.

Counts in the response are this worker's view: `duplicates` are ids repeated in the batch or
already labelled through this worker; `unknown_at_this_time` are ids this worker has not
logged recently (another worker may have, or the prediction was not sampled). Nothing is
dropped for being unknown: `mlgen monitor` joins the whole logs and has the final count.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .ids import ROW_ID
from .reqlog import rfc3339_now
from .schema import InputError

LABELS_FILE = "labels.jsonl"
MAX_LABELS = 100_000
REMEMBER = 1_000_000  # ids kept in memory per worker for the duplicate/unknown counts


def parse_feedback(body: Any) -> list[tuple[str, Any]]:
    """(id, label) pairs; an InputError (422) names the first bad row."""
    rows = body.get("labels") if isinstance(body, dict) else body
    if not isinstance(rows, list):
        raise InputError(422, "expected a JSON list of {\"id\", \"label\"} objects "
                              "(or {\"labels\": [...]})")
    if len(rows) > MAX_LABELS:
        raise InputError(413, f"{len(rows)} labels in one request; send at most {MAX_LABELS}")
    out: list[tuple[str, Any]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(422, f"row {i}: expected an object with 'id' and 'label'")
        rid, label = row.get("id"), row.get("label")
        if not isinstance(rid, str) or not ROW_ID.match(rid):
            raise InputError(422, f"row {i}: 'id' must be a request id (1-140 characters of "
                                  "A-Z a-z 0-9 . _ : -)")
        if label is None or isinstance(label, (dict, list)) or (
                isinstance(label, float) and not math.isfinite(label)):
            raise InputError(422, f"row {i} (id {rid!r}): 'label' must be a number, a string or "
                                  "a boolean")
        if isinstance(label, str) and len(label) > 256:
            raise InputError(422, f"row {i} (id {rid!r}): 'label' is longer than 256 characters")
        out.append((rid, label))
    return out


class _Recent:
    """A bounded set: the newest REMEMBER ids."""

    def __init__(self, limit: int = REMEMBER) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, key: str) -> None:
        self._ids[key] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._ids


class LabelWriter:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / LABELS_FILE
        self._lock = folder / ".requests.lock"
        self.logged = _Recent()
        self.labelled = _Recent()

    def append(self, labels: list[tuple[str, Any]]) -> dict[str, int]:
        ts = rfc3339_now()
        seen: set[str] = set()
        duplicates = unknown = 0
        lines = []
        for rid, label in labels:
            if rid in seen or rid in self.labelled:
                duplicates += 1
            if rid not in self.logged:
                unknown += 1
            seen.add(rid)
            lines.append(json.dumps({"id": rid, "label": label, "labelled_at": ts},
                                    separators=(",", ":"), ensure_ascii=False))
        data = ("\n".join(lines) + "\n").encode() if lines else b""
        if data:
            lock = os.open(self._lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
            finally:
                os.close(lock)  # closing releases the flock
        for rid in seen:
            self.labelled.add(rid)
        return {"received": len(labels), "accepted": len(labels), "duplicates": duplicates,
                "unknown_at_this_time": unknown}
