"""The generated monitor pipelines pass the report's reason to the retraining as data: the
scripts that read it are the rendered ones, run here on a report whose reason is hostile (shell
syntax, quotes, newlines that would add outputs); the reason comes out as one literal line and
nothing in it runs. The rendered files are the credit-risk example's (the golden output)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import REPO

EXAMPLE = REPO / "examples" / "credit-risk"
HOSTILE = ("roc_auc dropped 0.1 $(touch pwned) `touch pwned2` \"dq\" 'sq' ${{ secrets.X }}\n"
           "reason=evil\ndropped=false; touch pwned3")
ONE_LINE = "performance drop: " + " ".join(HOSTILE.split())


def _workspace(tmp_path: Path) -> dict[str, str]:
    """A job's workspace: the report a drop leaves, and a `.venv` whose mlgen says "drop"."""
    (tmp_path / "reports" / "monitor").mkdir(parents=True)
    (tmp_path / "reports" / "monitor" / "monitor-report.json").write_text(
        json.dumps({"reason": HOSTILE, "exit_code": 1}))
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "mlgen").write_text("#!/bin/sh\nexit 1\n")
    (venv / "mlgen").chmod(0o755)
    (venv / "python").symlink_to(sys.executable)
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}


def test_github_monitor_passes_the_reason_as_one_output_line(tmp_path: Path) -> None:
    wf = yaml.safe_load((EXAMPLE / ".github" / "workflows" / "monitor.yml").read_text())
    step = next(s for s in wf["jobs"]["monitor"]["steps"] if s.get("id") == "monitor")
    env = _workspace(tmp_path) | {k: str(v) for k, v in step["env"].items()}
    out = tmp_path / "github_output"
    env["GITHUB_OUTPUT"] = str(out)
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().splitlines() == ["dropped=true", "reason=" + ONE_LINE]
    assert not list(tmp_path.glob("pwned*"))
    assert wf["jobs"]["monitor"]["outputs"]["reason"] == "${{ steps.monitor.outputs.reason }}"
    retrain = next(s for s in wf["jobs"]["retrain"]["steps"] if s["name"] == "Retrain")
    assert retrain["env"]["RETRAIN_REASON"].startswith("${{ needs.monitor.outputs.reason ||")
    # Never expanded into a script: only env carries it.
    for job in wf["jobs"].values():
        assert not any("outputs.reason" in s.get("run", "") for s in job["steps"])


def _groovy_single_quoted(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def test_jenkins_monitor_passes_the_reason_as_a_build_parameter(tmp_path: Path) -> None:
    jf = (EXAMPLE / "Jenkinsfile.monitor").read_text()
    m = re.search(r"env\.DROP_REASON = sh\(script: '((?:[^'\\]|\\.)*)', returnStdout: true\)"
                  r"\.trim\(\)", jf)
    assert m, "the Monitor stage reads the reason with a fixed sh script"
    env_block = re.search(r"REPORT_JSON = '([^']*)'", jf)
    assert env_block
    env = _workspace(tmp_path) | {"REPORT_JSON": env_block.group(1)}
    proc = subprocess.run(["sh", "-c", _groovy_single_quoted(m.group(1))], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ONE_LINE and proc.stdout.count("\n") == 1
    assert not list(tmp_path.glob("pwned*"))
    build = next(line for line in jf.splitlines() if "build job:" in line)
    assert "string(name: 'RETRAIN_REASON', value: env.DROP_REASON ?: " in build
    assert "${" not in build  # no GString: the reason is a value, not text in a string
