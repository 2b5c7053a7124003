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


class TemplateSandboxError(UsageError):
    """A template tried something the Jinja sandbox forbids (Python internals, unsafe calls).

    Templates, overrides included, render in Jinja's SandboxedEnvironment, so a template is
    text to fill in, never a way to run code. `file` is the template file as the loader found
    it and `line` its 1-based line (0 when Jinja could not tell).
    """

    def __init__(self, file: str, line: int, detail: str) -> None:
        self.file, self.line, self.detail = file, line, detail
        where = f"{file}:{line}" if line else file
        super().__init__(
            f"{where}: template blocked by the sandbox: {detail} (mlgen renders templates in a "
            "sandbox that refuses Python internals such as attributes starting with '_', "
            "function globals and unsafe calls; remove that expression from the template)")

    def relocated(self, file: str) -> TemplateSandboxError:
        """The same error naming the template as `file` (e.g. OWNER/NAME:path for a remote)."""
        return TemplateSandboxError(file, self.line, self.detail)
