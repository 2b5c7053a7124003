"""yamllint over every generated YAML file, always with mlgen's committed configuration."""
from __future__ import annotations

import re

from ..render import BUILTIN_TEMPLATES
from .locate import require_executable, run, tool_error
from .model import Finding, ToolOutcome, Workspace

NAME = "yamllint"
INSTALL = "bash scripts/install-tools.sh (or: pip install 'yamllint==1.38.0')"
CONFIG = BUILTIN_TEMPLATES / "yamllint.yaml"
# parsable format: file:line:col: [level] message (rule)
_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): \[(?P<level>\w+)\] "
                   r"(?P<msg>.*?)(?: \((?P<rule>[\w-]+)\))?$")


def files(ws: Workspace) -> tuple[str, ...]:
    return ws.yaml_files


def check(ws: Workspace) -> ToolOutcome:
    exe = require_executable("yamllint")
    targets = files(ws)
    proc = run([exe, "-c", str(CONFIG), "-f", "parsable",
                "--", *targets], cwd=ws.root)
    findings = []
    for raw in proc.stdout.splitlines():
        m = _LINE.match(raw)
        if m:
            findings.append(Finding(m["file"], NAME, m["rule"] or "syntax", int(m["line"]),
                                    m["msg"], m["level"]))
    if proc.returncode not in (0, 1, 2) or (proc.returncode and not findings):
        findings.append(Finding("", NAME, "tool-error", 0, tool_error(NAME, "", proc, "failed")))
    return ToolOutcome(findings, files=len(targets))
