"""checkov over the Kubernetes manifests, the Dockerfile, the workflows and the Azure
pipeline, in one run.

Every failed check is a finding. A check skipped by an inline annotation in the file
(`checkov.io/skipN` on a Kubernetes object, `# checkov:skip=ID:reason` elsewhere) is listed as
a note with its reason; one skipped without a reason is a finding.
"""
from __future__ import annotations

import json
from typing import Any

from .locate import require_executable, run, tool_error
from .model import Finding, Note, ToolOutcome, Workspace

NAME = "checkov"
INSTALL = "bash scripts/install-tools.sh (or: pip install 'checkov==3.3.30' in a venv of its own)"


def files(ws: Workspace) -> tuple[str, ...]:
    return (*ws.dockerfiles, *ws.workflows, *ws.azure_pipelines, *ws.k8s_resources)


def check(ws: Workspace) -> ToolOutcome:
    exe = require_executable("checkov")
    targets = files(ws)
    argv = [exe, "--compact", "--output", "json", "--skip-download",
            "--framework", "kubernetes", "dockerfile", "github_actions", "azure_pipelines"]
    for path in targets:
        argv += ["--file", path]
    # No telemetry or downloads from a scanner that runs in banks' CI.
    proc = run(argv, cwd=ws.root, env={"BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_TELEMETRY": "1",
                                        "LOG_LEVEL": "ERROR"})
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return ToolOutcome(
            [Finding("", NAME, "tool-error", 0, tool_error(NAME, "", proc, "gave no JSON"))],
            files=len(targets),
        )
    reports = data if isinstance(data, list) else [data]
    findings: list[Finding] = []
    notes: list[Note] = []
    for report in reports:
        findings += _parsing_errors(report)
        results = report.get("results", {}) if isinstance(report, dict) else {}
        for item in results.get("failed_checks", []):
            findings.append(
                Finding(
                    _path(item),
                    NAME,
                    str(item.get("check_id")),
                    _line(item),
                    f"{item.get('check_name', '')} [{item.get('resource', '')}]".strip(),
                    "failed",
                )
            )
        for item in results.get("skipped_checks", []):
            reason = str((item.get("check_result") or {}).get("suppress_comment")
                         or item.get("suppress_comment") or "").strip()
            if not reason or reason.lower() == "no comment provided":
                findings.append(Finding(_path(item), NAME, str(item.get("check_id")), _line(item),
                                        "skipped without a reason: say why the check does not "
                                        "apply in the skip annotation", "failed"))
            else:
                notes.append(Note(_path(item), NAME, "suppressed",
                                  f"{item.get('check_id')} skipped: {reason}"))
    return ToolOutcome(findings, notes, files=len(targets))


def _parsing_errors(report: Any) -> list[Finding]:
    if not isinstance(report, dict):
        return []
    errors = report.get("results", {}).get("parsing_errors", []) or []
    return [Finding(str(p).lstrip("/"), NAME, "parsing-error", 0,
                    "checkov could not parse this file, so none of its checks ran") for p in errors]


def _path(item: dict[str, Any]) -> str:
    return str(item.get("repo_file_path") or item.get("file_path") or "").lstrip("/")


def _line(item: dict[str, Any]) -> int:
    lines = item.get("file_line_range") or [0]
    return int(lines[0] or 0)
