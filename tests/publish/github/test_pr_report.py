"""The PR report never reads as a pass when validation tools did not run."""
from __future__ import annotations

import json
from pathlib import Path

from mlgen.publish.github.report import findings_section


def _report(tmp_path: Path, findings: list[dict[str, object]], skipped: list[str]) -> str:
    path = tmp_path / "validation.json"
    path.write_text(json.dumps({"findings": findings, "skipped": skipped}))
    return findings_section(path)


def test_skipped_tools_are_named_and_no_green_tick(tmp_path: Path) -> None:
    text = _report(tmp_path, [], ["actionlint", "checkov"])
    assert "✅" not in text
    assert "Not run (not installed on this agent): `actionlint`, `checkov`." in text


def test_skipped_tools_are_named_beside_findings(tmp_path: Path) -> None:
    finding = {"tool": "hadolint", "file": "Dockerfile", "line": 3, "message": "DL3008"}
    text = _report(tmp_path, [finding], ["checkov"])
    assert "1 finding(s)" in text and "`checkov`" in text


def test_all_tools_ran_and_clean(tmp_path: Path) -> None:
    assert _report(tmp_path, [], []) == "### Validation\n\n✅ No findings."
