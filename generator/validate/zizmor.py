"""zizmor over the workflows: the auditor persona, findings of medium severity and above.

The auditor persona is zizmor's strictest; the severity floor is the bar mlgen's own
templates are held to. Expressions zizmor cannot parse are reported too: an audit that could
not run is not a pass.
"""
from __future__ import annotations

import json
import re

from .locate import require_executable, run, tool_error
from .model import Finding, ToolOutcome, Workspace

NAME = "zizmor"
INSTALL = "bash scripts/install-tools.sh (or: pip install 'zizmor==1.32.0')"
_UNPARSED = re.compile(r'ident="(?P<ident>[\w-]+)" input=Workflow\(file://(?P<file>[^)]+)\)\}: '
                       r"\S+: couldn't parse expression: (?P<expr>.*)$")


def files(ws: Workspace) -> tuple[str, ...]:
    return ws.workflows


def check(ws: Workspace) -> ToolOutcome:
    exe = require_executable("zizmor")
    targets = files(ws)
    proc = run([exe, "--offline", "--no-progress", "--no-exit-codes", "--persona", "auditor",
                "--min-severity", "medium", "--format", "json", "--color", "never", *targets],
               cwd=ws.root)
    findings: list[Finding] = []
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return ToolOutcome(
            [Finding("", NAME, "tool-error", 0, tool_error(NAME, "", proc, "gave no JSON"))],
            files=len(targets),
        )
    for item in results:
        location = (item.get("locations") or [{}])[0]
        path = location.get("symbolic", {}).get("key", {}).get("Local", {}).get("given_path") \
            or location.get("symbolic", {}).get("key", {}).get("Local", {}).get("verbatim_path", "")
        line = (
            location.get("concrete", {}).get("location", {}).get("start_point", {}).get("row", -1)
        )
        severity = str(item.get("determinations", {}).get("severity", "")).lower()
        findings.append(Finding(path, NAME, str(item.get("ident", "")), int(line) + 1,
                                str(item.get("desc", "")), severity))
    seen = set()
    for raw in proc.stderr.splitlines():
        m = _UNPARSED.search(raw)
        if m and (m["file"], m["expr"]) not in seen:
            seen.add((m["file"], m["expr"]))
            findings.append(Finding(m["file"], NAME, "unparsable-expression", 0,
                                    f"zizmor could not parse the expression {m['expr']!r}, so "
                                    f"audits such as {m['ident']} did not run on it", "warning"))
    return ToolOutcome(findings, files=len(targets))
