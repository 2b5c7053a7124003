"""Unified diffs for people: the one wrapper around difflib that every `--diff` prints with."""
from __future__ import annotations

import difflib


def diff_text(old: str, new: str, fromfile: str, tofile: str, *, fromdate: str = "",
              todate: str = "", context: int = 3) -> str:
    """A unified diff of two texts; a last line without a newline is marked the way git does."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=fromfile, tofile=tofile, fromfiledate=fromdate, tofiledate=todate, n=context)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


def unified_diff(path: str, old: str | None, new: str | None,
                 old_label: str = "", new_label: str = "") -> str:
    """A git-style diff of one file (a/path, b/path); None is a file that does not exist."""
    return diff_text(
        old or "", new or "",
        f"a/{path}" if old is not None else "/dev/null",
        f"b/{path}" if new is not None else "/dev/null",
        fromdate=f"({old_label})" if old_label and old is not None else "",
        todate=f"({new_label})" if new_label and new is not None else "")
