"""Issue 15's done-when, against the emulators: labels flipped for a segment make `mlgen
monitor` exit 1 and its retrain hook start a real build on the Jenkins emulator (via
python-jenkins) or a workflow_dispatch on the GitHub emulator (via PyGithub); the unchanged
case exits 0 and starts nothing."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.emulators.github import DEFAULT_TOKEN, Emulator
from tests.emulators.jenkins import JenkinsEmulator
from tests.helpers import call_mlgen
from tests.models.monitor.test_monitor_cli import NOW_ARG, make_project

# The Jenkins emulator fixtures live with the publish tests; imported, pytest uses them here.
from tests.publish.jenkins.conftest import (  # noqa: F401
    emulator,
    index_now,
    jenkins_env,
    write_spec,
)


def with_hook(root: Path, hook: str, ci: dict) -> Path:
    """The monitor project of test_monitor_cli, its retrain hook switched to a real one."""
    doc = yaml.safe_load((root / "mlgen.yaml").read_text())
    doc["drift"] = {"retrain_hook": hook}
    doc["ci"] = ci
    (root / "mlgen.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


@pytest.mark.parametrize("flip", [0.3, 0.0])
def test_monitor_drop_builds_the_jenkins_job(
        flip: float, jenkins_env: JenkinsEmulator, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    # Register the job first, as `mlgen jenkins apply` does in a real rollout of the model.
    jobs = tmp_path / "jobs"
    write_spec(jobs, name="credit")
    assert call_mlgen(capsys, "-C", str(jobs), "jenkins", "apply")[0] == 0
    index_now(jenkins_env, "ml/retail/credit")  # the branch job exists, as after a scan
    ci = yaml.safe_load((jobs / "mlgen.yaml").read_text())["ci"]
    root = with_hook(make_project(tmp_path / "model", flip=flip)[0], "jenkins", ci)
    code, _out, err = call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG)
    branch = jenkins_env.state.find(["ml", "retail", "credit", "main"])
    assert branch is not None
    if flip == 0.0:
        assert code == 0, err
        assert branch.builds == []
        return
    assert code == 1, err
    assert "PERFORMANCE DROP [credit]: roc_auc dropped" in err
    assert "window 2026-11-24T12:00:00Z..2026-12-01T12:00:00Z" in err
    [build] = branch.builds
    assert build.params["RETRAIN_REASON"].startswith("performance drop: roc_auc dropped")


def test_monitor_drop_dispatches_the_github_workflow(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator() as emu:
        emu.add_repo("bank/credit", {"README.md": "x"}, default_branch="trunk")
        monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        ci = {"github": {"repository": "bank/credit", "default_branch": "trunk"}}
        calm = with_hook(make_project(tmp_path / "calm", flip=0.0)[0], "github", ci)
        assert call_mlgen(capsys, "-C", str(calm), "monitor", "--now", NOW_ARG)[0] == 0
        assert emu.state.repo("bank", "credit").dispatches == []
        root = with_hook(make_project(tmp_path / "drop", flip=0.3)[0], "github", ci)
        code, _out, err = call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG)
        assert code == 1, err
        assert "PERFORMANCE DROP [credit]: roc_auc dropped" in err
        [dispatch] = emu.state.repo("bank", "credit").dispatches
        assert dispatch["ref"] == "trunk"
        assert dispatch["inputs"]["reason"].startswith("performance drop: roc_auc dropped")
