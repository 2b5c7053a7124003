"""What `mlgen validate` says on stderr while the tools run (they take tens of seconds).

Each tool gets a line as it starts and as it finishes. On a terminal the starts are folded
into one live line ("validate: running checkov, npm-groovy-lint (4 of 8 done)") that the
finished lines scroll above; elsewhere (CI logs, pipes) every event is a plain line, so a log
shows which tool was running when a job hung. Nothing here writes to stdout, which carries
the report (and must stay machine-clean with --format json).
"""
from __future__ import annotations

import threading
from typing import TextIO

from .model import ToolRun

_CLEAR_LINE = "\r\x1b[K"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def outcome_text(run: ToolRun, findings: int, seconds: float) -> str:
    """The end of a tool's finished line: "ok (1.2 s)", "3 findings (4.0 s)", "skipped: ..."."""
    if run.status == "nothing-to-check":
        return "nothing to check"
    if run.status == "skipped":
        # The full reason (which executable was looked for where) is in the report.
        return f"skipped: not installed (install: {run.install})"
    verdict = "ok" if findings == 0 else _plural(findings, "finding")
    return f"{verdict} ({seconds:.1f} s)"


class StderrProgress:
    """A runner.Progress writing to `stream`; `live` rewrites one status line in place."""

    def __init__(self, stream: TextIO, live: bool) -> None:
        self._stream = stream
        self._live = live
        self._lock = threading.Lock()
        self._running: list[str] = []
        self._total = 0
        self._done = 0

    def planned(self, tools: tuple[str, ...]) -> None:
        with self._lock:
            self._total = len(tools)

    def started(self, tool: str, files: int) -> None:
        with self._lock:
            self._running.append(tool)
            if self._live:
                self._redraw()
            else:
                self._line(f"validate: {tool} started ({_plural(files, 'file')})")

    def finished(self, run: ToolRun, findings: int, seconds: float) -> None:
        with self._lock:
            if run.tool in self._running:
                self._running.remove(run.tool)
            self._done += 1
            if self._live:
                self._stream.write(_CLEAR_LINE)
            self._line(f"validate: {run.tool} ... {outcome_text(run, findings, seconds)}")
            if self._live:
                self._redraw()

    def close(self) -> None:
        """Take the live line away before the report is printed."""
        with self._lock:
            if self._live:
                self._stream.write(_CLEAR_LINE)
                self._stream.flush()

    def _line(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def _redraw(self) -> None:
        if not self._running:
            self._stream.write(_CLEAR_LINE)
        else:
            self._stream.write(f"{_CLEAR_LINE}validate: running {', '.join(self._running)} "
                               f"({self._done} of {self._total} done)")
        self._stream.flush()
