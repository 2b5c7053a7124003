"""Sampled request logging: the JSON-lines files the drift job reads.

Format (the shared contract): a folder with `requests.jsonl` (current) and rotated
`requests.jsonl.1` ... `.N`; one object per predicted row,
`{"ts": RFC3339 UTC, "model": name, "id": row id, "features": {...}, "prediction": value}`,
plus `"score"` (the positive-class probability) for a binary classifier, and `"shadow": true`
in a shadow challenger's log of mirrored requests (see shadow.py). The id is the
request id (see ids.py) that labels sent to the feedback endpoint refer to.

Several worker processes append to the same file. Lines are buffered in memory and written
about once a second, each flush one `write()` on an O_APPEND descriptor, under an exclusive
`flock` on a lock file so that rotation (rename .N-1 -> .N ... current -> .1) never races
with another worker's write. After taking the lock a worker reopens the file if its inode
changed (someone else rotated). On disk the folder stays under about
(backups + 1) * max_bytes: a flush rotates first when it would push the file past max_bytes.
"""
from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import random
from datetime import UTC, datetime
from typing import Any

from mlgen.models.contract import REQUEST_LOG_FILE

from .config import RequestLogConfig

log = logging.getLogger("mlgen.serve")
CURRENT = REQUEST_LOG_FILE
FLUSH_BYTES = 256 * 1024  # flush early when a burst fills the buffer


def rfc3339_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RequestLogger:
    def __init__(self, config: RequestLogConfig, model_name: str, shadow: bool = False) -> None:
        self.config = config
        self.shadow = shadow
        self.model_name = model_name
        self.folder = config.path
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path = self.folder / CURRENT
        self._lock_fd = os.open(self.folder / ".requests.lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._fd = -1
        self._buffer: list[str] = []
        self._buffered = 0
        self._random = random.Random()

    def sample(self, columns: dict[str, list[Any]], rows: int, predictions: list[Any],
               ids: list[str] | None = None, scores: list[float] | None = None) -> list[str]:
        """Buffer a sampled subset of these rows; returns the ids of those taken."""
        rate = self.config.sample_rate
        taken: list[str] = []
        if rate <= 0.0:
            return taken
        ts = rfc3339_now()
        names = list(columns)
        rand = self._random.random
        for i in range(rows):
            if rate < 1.0 and rand() >= rate:
                continue
            features = {}
            for name in names:
                value = columns[name][i]
                if isinstance(value, float) and math.isnan(value):
                    value = None
                features[name] = value
            row: dict[str, Any] = {"ts": ts, "model": self.model_name}
            if ids is not None:
                row["id"] = ids[i]
            row["features"] = features
            row["prediction"] = predictions[i]
            if scores is not None:
                row["score"] = scores[i]
            if self.shadow:
                row["shadow"] = True
            line = json.dumps(row, separators=(",", ":"), ensure_ascii=False)
            self._buffer.append(line)
            self._buffered += len(line) + 1
            taken.append(row.get("id", ""))
        return taken

    @property
    def needs_flush(self) -> bool:
        return self._buffered >= FLUSH_BYTES

    def flush(self) -> None:
        if not self._buffer:
            return
        data = ("\n".join(self._buffer) + "\n").encode()
        self._buffer.clear()
        self._buffered = 0
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._reopen_if_rotated()
                if os.fstat(self._fd).st_size + len(data) > self.config.max_bytes:
                    self._rotate()
                os.write(self._fd, data)
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        except OSError as exc:  # a full disk must not take predictions down with it
            log.warning(
                "request log: dropped %d bytes, cannot write %s: %s", len(data), self._path, exc
            )

    def _reopen_if_rotated(self) -> None:
        if self._fd >= 0:
            try:
                if os.stat(self._path).st_ino == os.fstat(self._fd).st_ino:
                    return
            except FileNotFoundError:
                pass
            os.close(self._fd)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _rotate(self) -> None:
        if os.fstat(self._fd).st_size == 0:
            return  # one oversized flush: write it rather than rotate an empty file
        os.close(self._fd)
        backups = self.config.backups
        if backups <= 0:
            os.truncate(self._path, 0)
        else:
            for i in range(backups - 1, 0, -1):
                src = self.folder / f"{CURRENT}.{i}"
                if src.exists():
                    os.replace(src, self.folder / f"{CURRENT}.{i + 1}")
            os.replace(self._path, self.folder / f"{CURRENT}.1")
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        os.close(self._lock_fd)
