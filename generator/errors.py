"""One error hierarchy for mlgen. No Click in here: the CLI maps these to exit codes in one place.

Exit codes (documented in README.md and docs/commands.md):
  0 ok, 1 failure or findings, 2 usage or spec error, 3 unexpected error (bug), 130 Ctrl-C.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from . import DISTRIBUTION

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


class MlgenError(Exception):
    """An error the user can act on. The message is printed as is, without a traceback."""

    exit_code = EXIT_FAILURE


class UsageError(MlgenError):
    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec file, located by key path and line:column."""

    file: str
    path: str  # dotted key path, e.g. "serve.autoscaling.min"
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    message: str

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class SpecError(MlgenError):
    """The spec (mlgen.yaml) is missing, unreadable or invalid. Nothing was written."""

    exit_code = EXIT_USAGE

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = issues
        lines = [issue.format() for issue in issues]
        super().__init__("\n".join(lines))


class MissingExtraError(MlgenError):
    exit_code = EXIT_USAGE


def require_extra(module: str, extra: str, feature: str) -> ModuleType:
    """Import an optional dependency, or fail with one line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs the '{extra}' extra ({module} is not installed): "
            f"pip install '{DISTRIBUTION}[{extra}]'"
        ) from exc
