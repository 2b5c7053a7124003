"""The retrain hook's credentials in the CronJob pods (issue 15): with drift.retrain_hook jenkins
or github, the drift and monitor CronJobs mount the Secret `<name>-retrain` read-only and name
its files in *_FILE variables; the hooks read the token from that file and start a build on
the Jenkins emulator (python-jenkins) or a workflow_dispatch on the GitHub emulator (PyGithub),
without the token reaching any output; a missing or empty file is an error naming both."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlgen.cli import main
from mlgen.project import render_artifacts
from mlgen.spec import Spec

from tests.emulators.github import DEFAULT_TOKEN, Emulator
from tests.emulators.jenkins import JenkinsEmulator
from tests.helpers import EXAMPLES, call_mlgen
from tests.models.monitor.test_monitor_cli import NOW_ARG, make_project
from tests.models.monitor.test_monitor_retrain_emulators import with_hook
from tests.models.retrain_credentials import (
    assert_mounts_the_secret,
    cronjobs,
    pod,
    secret_files,
)

# The Jenkins emulator fixtures live with the publish tests; imported, pytest uses them here.
from tests.publish.jenkins.conftest import (  # noqa: F401
    ADMIN_TOKEN,
    emulator,
    index_now,
    jenkins_env,
    write_spec,
)
from tests.validate.helpers import need

CREDIT_RISK: dict[str, Any] = yaml.safe_load((EXAMPLES / "credit-risk" / "mlgen.yaml").read_text())


def credit_risk(hook: str, *, on_drop: list[str] | None = None) -> dict[str, Any]:
    data = copy.deepcopy(CREDIT_RISK)
    data["drift"]["retrain_hook"] = hook
    if on_drop is not None:
        data["monitor"]["on_drop"] = on_drop
    return data


@pytest.mark.parametrize("hook", ["jenkins", "github"])
def test_cronjobs_mount_the_retrain_secret_and_name_its_files(hook: str) -> None:
    jobs = cronjobs(credit_risk(hook))
    assert sorted(jobs) == ["cronjob-drift.yaml", "cronjob-monitor.yaml"]
    for job in jobs.values():
        assert_mounts_the_secret(job, hook, "credit-risk")


@pytest.mark.parametrize("hook", ["none", "command"])
def test_no_secret_without_a_jenkins_or_github_retraining(hook: str) -> None:
    for job in cronjobs(credit_risk(hook)).values():
        assert "env" not in pod(job)["containers"][0]
        assert [v["name"] for v in pod(job)["volumes"]] == ["tmp", "request-log"]
    # The monitor only alerts: its pod gets no credentials, the drift job's still does.
    jobs = cronjobs(credit_risk("jenkins", on_drop=["alert"]))
    assert "env" not in pod(jobs["cronjob-monitor.yaml"])["containers"][0]
    assert "env" in pod(jobs["cronjob-drift.yaml"])["containers"][0]


def dockerfile(data: dict[str, Any]) -> str:
    spec = Spec.model_validate(data)
    [text] = [a.text for a in render_artifacts(spec, EXAMPLES / "credit-risk")
              if a.path == "Dockerfile"]
    return text


@pytest.mark.parametrize("hook", ["jenkins", "github"])
def test_the_image_installs_the_hooks_client_library(hook: str) -> None:
    # The CronJobs run the model image; requirements.txt names only the runtime extra.
    assert f"'mlgen-pipelines[{hook}]==" in dockerfile(credit_risk(hook))


@pytest.mark.parametrize("hook", ["none", "command"])
def test_the_image_installs_no_client_library_the_hook_does_not_use(hook: str) -> None:
    text = dockerfile(credit_risk(hook))
    assert "mlgen-pipelines[jenkins]" not in text and "mlgen-pipelines[github]" not in text


def test_github_variant_passes_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need("checkov", "kubernetes-validate", "kubectl", "yamllint")
    project = tmp_path / "credit-risk"
    shutil.copytree(EXAMPLES / "credit-risk", project)
    (project / "mlgen.yaml").write_text(yaml.safe_dump(credit_risk("github"), sort_keys=False))
    code = main(["-C", str(project), "validate", "--rendered", "--require-all",
                 "--tool", "checkov", "--tool", "kubernetes-validate", "--tool", "kustomize",
                 "--tool", "yamllint"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.rstrip().endswith(": clean")


def test_jenkins_hook_reads_the_token_file_and_builds(
        jenkins_env: JenkinsEmulator, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = tmp_path / "jobs"
    write_spec(jobs, name="credit")
    assert call_mlgen(capsys, "-C", str(jobs), "jenkins", "apply")[0] == 0
    index_now(jenkins_env, "ml/retail/credit")
    ci = yaml.safe_load((jobs / "mlgen.yaml").read_text())["ci"]
    root = with_hook(make_project(tmp_path / "model", flip=0.3)[0], "jenkins", ci)
    monkeypatch.delenv("JENKINS_USER")
    monkeypatch.delenv("JENKINS_API_TOKEN")
    for name, path in secret_files(tmp_path / "secret", {
            "JENKINS_USER": "admin", "JENKINS_API_TOKEN": ADMIN_TOKEN}).items():
        monkeypatch.setenv(name, path)
    code, out, err = call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG)
    assert code == 1, err
    branch = jenkins_env.state.find(["ml", "retail", "credit", "main"])
    assert branch is not None
    [build] = branch.builds
    assert build.params["RETRAIN_REASON"].startswith("performance drop: roc_auc dropped")
    assert "retrain hook 'jenkins' failed" not in err
    assert ADMIN_TOKEN not in out + err
    reports = [p.read_text() for p in (root / "reports").rglob("*") if p.is_file()]
    assert reports and not any(ADMIN_TOKEN in text for text in reports)


def test_github_hook_reads_the_token_file_and_dispatches(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator() as emu:
        emu.add_repo("bank/credit", {"README.md": "x"}, default_branch="trunk")
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        monkeypatch.delenv("GH_TOKEN", raising=False)
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        [(name, path)] = secret_files(tmp_path / "secret", {"GITHUB_TOKEN": DEFAULT_TOKEN}).items()
        monkeypatch.setenv(name, path)
        ci = {"github": {"repository": "bank/credit", "default_branch": "trunk"}}
        root = with_hook(make_project(tmp_path / "drop", flip=0.3)[0], "github", ci)
        code, out, err = call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG)
        assert code == 1, err
        [dispatch] = emu.state.repo("bank", "credit").dispatches
        assert dispatch["inputs"]["reason"].startswith("performance drop: roc_auc dropped")
        assert DEFAULT_TOKEN not in out + err


@pytest.mark.parametrize("content", [None, ""], ids=["missing", "empty"])
def test_missing_or_empty_token_file_is_a_clear_hook_failure(
        content: str | None, jenkins_env: JenkinsEmulator,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_spec(tmp_path / "jobs", name="credit")
    ci = yaml.safe_load((tmp_path / "jobs" / "mlgen.yaml").read_text())["ci"]
    root = with_hook(make_project(tmp_path / "model", flip=0.3)[0], "jenkins", ci)
    token = tmp_path / "secret" / "JENKINS_API_TOKEN"
    if content is not None:
        token.parent.mkdir()
        token.write_text(content)
    monkeypatch.delenv("JENKINS_API_TOKEN")
    monkeypatch.setenv("JENKINS_API_TOKEN_FILE", str(token))
    code, _out, err = call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG)
    assert code == 1, err
    assert ("retrain hook 'jenkins' failed: jenkins retrain hook: "
            f"JENKINS_API_TOKEN_FILE={token}: ") in err
    assert ("the file is empty" if content is not None else "cannot read the file") in err
