"""Prometheus' promtool over the PrometheusRule's rules: PromQL parses, durations and labels are
valid, alert templates compile.

kubernetes-validate has no schema for the PrometheusRule (a custom resource of the Prometheus
Operator); its `spec` is a Prometheus rules file (`groups:`), so the spec of each one is
written to the scratch folder and checked with `promtool check rules`, as the operator's
admission webhook would. A problem is reported on the line of the rule it names.
"""
from __future__ import annotations

import re

import yaml

from .locate import require_executable, run, tool_error
from .model import Finding, ToolOutcome, Workspace

NAME = "promtool"
INSTALL = "apt-get install prometheus (its promtool), or promtool from a Prometheus release"
KIND = "PrometheusRule"
# promtool: `FILE: 8:17: group "g", rule 2, "ModelDriftJobStale": could not parse ...`
_PROBLEM = re.compile(r'^(?:\S+: )?(?:\d+:\d+: )?group "(?P<group>[^"]*)", rule (?P<rule>\d+), '
                      r'"(?P<name>[^"]*)": (?P<msg>.*)$')


def files(ws: Workspace) -> tuple[str, ...]:
    return tuple(p for p in ws.k8s_resources
                 if f"kind: {KIND}" in (ws.root / p).read_text(encoding="utf-8",
                                                               errors="replace"))


def check(ws: Workspace) -> ToolOutcome:
    exe = require_executable("promtool")
    findings: list[Finding] = []
    wanted = files(ws)
    for i, path in enumerate(wanted):
        text = (ws.root / path).read_text(encoding="utf-8")
        try:
            docs = [d for d in yaml.safe_load_all(text)
                    if isinstance(d, dict) and d.get("kind") == KIND]
        except yaml.YAMLError as exc:  # yamllint reports it with its line
            findings.append(Finding(path, NAME, "yaml", 0, f"not YAML: {exc}"))
            continue
        for j, doc in enumerate(docs):
            rules = ws.scratch / f"promtool-{i}-{j}.yaml"
            rules.write_text(yaml.safe_dump(doc.get("spec") or {}, sort_keys=False),
                             encoding="utf-8")
            proc = run([exe, "check", "rules", str(rules)], cwd=ws.root)
            if proc.returncode == 0:
                continue
            output = proc.stdout.splitlines() + proc.stderr.splitlines()
            problems = [m for m in map(_PROBLEM.match, output) if m]
            plain = [line.split(": ", 1)[1] for line in output
                     if line.startswith(f"{rules}: ") and not _PROBLEM.match(line)]
            for message in plain:  # not tied to a rule, e.g. a bad duration
                findings.append(Finding(path, NAME, "rules", 0, message))
            if not problems and not plain:
                findings.append(Finding(path, NAME, "tool-error", 0,
                                        tool_error(NAME, path, proc, "failed")))
            for m in problems:
                findings.append(Finding(path, NAME, "rules", _line_of(text, m["name"]),
                                        f'group "{m["group"]}", rule {m["rule"]} '
                                        f'"{m["name"]}": {m["msg"]}'))
    return ToolOutcome(findings, files=len(wanted))


def _line_of(text: str, name: str) -> int:
    """The line of `alert: NAME` or `record: NAME` in the manifest (0 when not found)."""
    pattern = re.compile(rf'^\s*-?\s*(?:alert|record):\s*"?{re.escape(name)}"?\s*$')
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return 0
