"""The one Markdown report mlgen posts on a pull request, composed from files CI left behind.

Each input is optional: a missing file is simply left out, so the same command works in a
repository without drift monitoring or before the first gate run. No network here: the command
hands the text to `mlgen.integrations.github.client.upsert_comment`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT_MARKER = "<!-- mlgen:pr-report -->"


def report_marker(model: str | None = None) -> str:
    """The hidden marker of the report comment; in a monorepo each model has its own (a pull
    request that changes two models carries two reports, neither overwriting the other)."""
    return REPORT_MARKER if not model else f"<!-- mlgen:pr-report model={model} -->"
MAX_SECTION_CHARS = 20_000  # GitHub caps a comment at 65,536 characters


@dataclass(frozen=True)
class ReportInputs:
    sync: Path | None = None  # JSON: {"in_sync": bool, "files": [{"path", "status"}]}
    findings: Path | None = None  # JSON: list of findings or {"findings": [...]}
    gate: Path | None = None  # a .md or .json file, or a folder holding one
    drift: Path | None = None  # a .md file, or a folder holding summary.md


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"_error": f"{path}: {exc}"}


def _pick(path: Path | None, names: tuple[str, ...]) -> Path | None:
    if path is None:
        return None
    if path.is_dir():
        for name in names:
            if (path / name).is_file():
                return path / name
        found = sorted(path.glob("*.md")) or sorted(path.glob("*.json"))
        return found[0] if found else None
    return path if path.is_file() else None


def _clip(text: str) -> str:
    if len(text) <= MAX_SECTION_CHARS:
        return text.rstrip()
    return text[:MAX_SECTION_CHARS].rstrip() + "\n\n… (truncated; see the CI artifacts)"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def sync_section(path: Path) -> str:
    data = _read_json(path)
    if "_error" in data:
        return f"### Pipeline files\n\n{data['_error']}"
    files = data.get("files") or []
    stale = [f for f in files if f.get("status") not in (None, "ok", "unchanged", "in-sync")]
    if data.get("in_sync", not stale):
        return "### Pipeline files\n\n✅ In sync with `mlgen.yaml`."
    rows = "\n".join(f"| `{_cell(f.get('path'))}` | {_cell(f.get('status'))} |" for f in stale)
    return ("### Pipeline files\n\n❌ Out of sync with `mlgen.yaml`: run `mlgen sync`.\n\n"
            f"| file | status |\n| --- | --- |\n{rows}")


def findings_section(path: Path) -> str:
    data = _read_json(path)
    if isinstance(data, dict) and "_error" in data:
        return f"### Validation\n\n{data['_error']}"
    findings = data.get("findings", []) if isinstance(data, dict) else data
    skipped = data.get("skipped", []) if isinstance(data, dict) else []
    # A tool that did not run is not a pass: say which, whatever the findings.
    not_run = (f"\n\n⚠️ Not run (not installed on this agent): "
               f"{', '.join(f'`{_cell(t)}`' for t in skipped)}." if skipped else "")
    if not findings:
        return ("### Validation\n\n✅ No findings." if not skipped else
                "### Validation\n\nNo findings from the tools that ran." + not_run)
    rows = []
    for f in findings[:50]:
        where = f.get("file") or f.get("path") or ""
        if f.get("line"):
            where = f"{where}:{f['line']}"
        rows.append(f"| {_cell(f.get('severity', 'error'))} | {_cell(f.get('tool', ''))} | "
                    f"`{_cell(where)}` | {_cell(f.get('message', ''))} |")
    more = f"\n\n… and {len(findings) - 50} more." if len(findings) > 50 else ""
    return (f"### Validation\n\n⚠️ {len(findings)} finding(s).\n\n"
            "| severity | tool | where | message |\n| --- | --- | --- | --- |\n"
            + "\n".join(rows) + more + not_run)


def gate_section(path: Path) -> str:
    if path.suffix == ".md":
        return "### Model gate\n\n" + _clip(path.read_text(encoding="utf-8"))
    data = _read_json(path)
    if "_error" in data:
        return f"### Model gate\n\n{data['_error']}"
    passed = data.get("passed")
    head = {True: "✅ Passed.", False: "❌ Failed."}.get(passed, "Result unknown.")
    rows = []
    for m in data.get("metrics", []) if isinstance(data.get("metrics"), list) else []:
        bound = " ".join(f"{k} {m[k]}" for k in ("min", "max") if m.get(k) is not None)
        rows.append(f"| {_cell(m.get('name'))} | {_cell(m.get('value'))} | {_cell(bound)} | "
                    f"{'✅' if m.get('passed') else '❌'} |")
    table = ("\n\n| metric | value | threshold | |\n| --- | --- | --- | --- |\n" + "\n".join(rows)
             if rows else "")
    champion = data.get("champion")
    extra = f"\n\nChampion: {_cell(json.dumps(champion))}" if champion else ""
    return f"### Model gate\n\n{head}{table}{extra}"


def compose_report(inputs: ReportInputs, title: str = "mlgen report",
                   marker: str = REPORT_MARKER) -> str:
    """The comment body: the hidden marker, a title, then one section per input present."""
    sections = []
    sync = _pick(inputs.sync, ("sync.json", "check.json"))
    if sync:
        sections.append(sync_section(sync))
    findings = _pick(inputs.findings, ("findings.json", "validation.json"))
    if findings:
        sections.append(findings_section(findings))
    gate = _pick(inputs.gate, ("gate.md", "report.md", "gate.json", "report.json"))
    if gate:
        sections.append(gate_section(gate))
    drift = _pick(inputs.drift, ("summary.md", "drift.md", "report.md"))
    if drift and drift.suffix == ".md":
        sections.append("### Drift\n\n" + _clip(drift.read_text(encoding="utf-8")))
    if not sections:
        sections.append("No reports were found in this build.")
    return f"{marker}\n## {title}\n\n" + "\n\n".join(sections) + "\n"
