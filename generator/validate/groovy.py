"""A Groovy parse of the Jenkinsfile with npm-groovy-lint (CodeNarc on Java 17).

Only errors count: parse errors (rule NglParseError) and CodeNarc rules of error level.
CodeNarc's style advice (line length, duplicate literals) is not about whether Jenkins can
run the file. `--noserver` keeps it from leaving a CodeNarc server (java) running.
"""
from __future__ import annotations

import json
from pathlib import Path

from .locate import require_executable, run, tool_error
from .model import Finding, ToolOutcome, Workspace

NAME = "npm-groovy-lint"
INSTALL = ("bash scripts/install-tools.sh (or: npm install --save-dev npm-groovy-lint@16.2.0; "
           "needs Node.js 20+ and Java 17: apt-get install openjdk-17-jre-headless)")


def files(ws: Workspace) -> tuple[str, ...]:
    return ws.jenkinsfiles


def check(ws: Workspace) -> ToolOutcome:
    exe = require_executable("npm-groovy-lint")
    require_executable("java", "java (Java 17, for CodeNarc)")
    require_executable("node", "node (Node.js 20+)")
    targets = files(ws)
    # One JVM for all files: starting CodeNarc is most of the cost.
    proc = run([exe, "--noserver", "--output", "json", "--failon", "none", "--loglevel", "error",
                *targets], cwd=ws.root)
    if not _is_json(proc.stdout):
        return ToolOutcome([Finding(targets[0], NAME, "tool-error", 0,
                                    tool_error(NAME, targets[0], proc, "gave no JSON"))],
                           files=len(targets))
    shown = {str((ws.root / t).resolve()): t for t in targets}
    return ToolOutcome(parse_output(proc.stdout, shown), files=len(targets))


def parse_output(stdout: str, shown: dict[str, str]) -> list[Finding]:
    """Findings of error level from npm-groovy-lint's JSON, keyed back to relative paths."""
    data = json.loads(stdout)
    out = []
    for file, report in data.get("files", {}).items():
        path = shown.get(str(Path(file).resolve()), file)
        for item in report.get("errors", []):
            if item.get("severity") != "error":
                continue
            message = " ".join(str(item.get("msg", "")).split())
            out.append(Finding(path, NAME, str(item.get("rule", "")), int(item.get("line") or 0),
                               message, "error"))
    return out


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True
