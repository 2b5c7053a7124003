"""Request ids: what joins a logged prediction to the label that arrives days later.

A caller's `X-Request-ID` (or the V2 body's `id`) is kept when it is sane: 1-128 characters
of `A-Z a-z 0-9 . _ : -`. Anything else (too long, spaces, quotes, control bytes) is replaced
by a generated id, so an id never breaks a log line, a header or a report. A request of one
row gives that row the request id; a request of N rows gives row i the id `{request id}-{i}`.
"""
from __future__ import annotations

import re
import uuid

SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ROW_ID = re.compile(r"^[A-Za-z0-9._:-]{1,140}$")  # a request id plus "-{row}"


def request_id(given: str | bytes | None) -> str:
    """The caller's id when sane, else a fresh one (32 hex characters)."""
    if isinstance(given, bytes):
        given = given.decode("latin-1")
    if given and SAFE_ID.match(given):
        return given
    return uuid.uuid4().hex


def row_ids(rid: str, rows: int) -> list[str]:
    if rows == 1:
        return [rid]
    return [f"{rid}-{i}" for i in range(rows)]
