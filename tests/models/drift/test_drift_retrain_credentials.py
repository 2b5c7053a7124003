"""The drift CronJob's retrain credentials (issue 15), end to end: the drift job rendered for a
spec with drift.retrain_hook jenkins or github is run here as its pod runs it (its args, its
ConfigMap and its *_FILE variables, the Secret's files at a local path, no token in the
environment), on a window that drifts; its retrain hook must start a build on the Jenkins
emulator (python-jenkins) or a workflow_dispatch on the GitHub emulator (PyGithub) as the
user whose token is in the file, with the token in no output or report. A missing or empty
file is a failed retrain naming the variable and the path. The golden examples' drift
CronJobs mount the Secret exactly when their hook needs it."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.github import Emulator
from tests.emulators.jenkins import JenkinsEmulator, User
from tests.helpers import EXAMPLES, call_mlgen
from tests.models import retrain_credentials as shared
from tests.models.drift.helpers import SHIFTED, write_drifted_window
from tests.models.retrain_credentials import KEYS, pod, pod_env, secret_files

# The Jenkins emulator fixtures live with the publish tests; imported, pytest uses them here.
from tests.publish.jenkins.conftest import (  # noqa: F401
    emulator,
    index_now,
    jenkins_env,
    write_spec,
)

pytest.importorskip("pyarrow", reason="mlgen drift needs the 'runtime' extra")

MODEL = "credit"
# A bot that may start builds and nothing else, not the admin that registered the job: the
# build's user proves whose credentials the hook sent.
BOT, BOT_TOKEN = "retrain-bot", "retrain-bot-token-5f3c9a1e7b"
BUILD_ONLY = frozenset({"Overall/Read", "Job/Read", "Job/Build"})
# Every variable through which a credential could reach the hook other than the Secret's files.
CREDENTIAL_ENV = ("JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN", "JENKINS_USER_FILE",
                  "JENKINS_API_TOKEN_FILE", "GITHUB_TOKEN", "GITHUB_TOKEN_FILE", "GH_TOKEN",
                  "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_PATH",
                  "GITHUB_APP_INSTALLATION_ID", "MLGEN_GITHUB_DRIFT_WORKFLOW")


def drift_model(root: Path, hook: str, ci: dict[str, Any]) -> Path:
    """A model repository whose request log (root/log, the pod's /var/log/mlgen) drifted an
    hour ago, with drift.on_drift [alert, retrain] and `hook`."""
    ts = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    numeric, categorical = write_drifted_window(root, root / "log", model=MODEL, ts=ts)
    doc = {"apiVersion": "mlgen/v1", "name": MODEL,
           "model": {"task": "classification",
                     "features": {"numeric": numeric, "categorical": categorical}},
           "drift": {"on_drift": ["alert", "retrain"], "retrain_hook": hook, "min_rows": 50},
           "ci": ci}
    (root / "mlgen.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


def rendered(root: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The drift CronJob and its ConfigMap's data, as `mlgen render` writes them for root."""
    from mlgen.project import render_artifacts
    from mlgen.spec_loader import load_spec

    files = {a.path: a.text for a in render_artifacts(load_spec(root / "mlgen.yaml"), root)}
    return (yaml.safe_load(files["k8s/base/cronjob-drift.yaml"]),
            yaml.safe_load(files["k8s/base/configmap.yaml"])["data"])


def run_drift_job(root: Path, secret: Path, monkeypatch: pytest.MonkeyPatch,
                  capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the rendered drift CronJob's command with the environment its pod gets (ConfigMap,
    then the container's env), /app and /var/log/mlgen mapped to root and root/log, the
    retrain Secret mounted at `secret`, and no credential from anywhere else."""
    job, config = rendered(root)
    [container] = pod(job)["containers"]
    assert container["command"] == ["/opt/venv/bin/mlgen"]
    args = [a.replace("/var/log/mlgen", str(root / "log")) for a in container["args"]]
    args = [str(root) if a == "/app" else a for a in args]
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**config, **pod_env(container, secret)}.items():
        monkeypatch.setenv(name, value)
    return call_mlgen(capsys, *args)


def drift_report(root: Path) -> str:
    return (root / "log" / "drift-reports" / "drift-report.json").read_text()


def retrain_action(report: str) -> dict[str, Any]:
    [action] = [a for a in json.loads(report)["actions"] if a["action"] == "retrain"]
    return dict(action)


def assert_mounts_the_secret(job: dict[str, Any], hook: str, name: str = MODEL) -> None:
    shared.assert_mounts_the_secret(job, hook, name)


@pytest.fixture()
def jenkins_model(jenkins_env: JenkinsEmulator, tmp_path: Path,  # noqa: F811
                  capsys: pytest.CaptureFixture[str]) -> Path:
    """The model's job registered by `mlgen jenkins apply` (as admin) and indexed, a build-only
    bot user on the controller, and the model pointing at the controller by ci.jenkins.url,
    as the pod has no JENKINS_URL."""
    jobs = tmp_path / "jobs"
    write_spec(jobs, name=MODEL)
    assert call_mlgen(capsys, "-C", str(jobs), "jenkins", "apply")[0] == 0
    index_now(jenkins_env, f"ml/retail/{MODEL}")
    with jenkins_env.state.lock:
        jenkins_env.state.users[BOT] = User(BOT, "bot-password", (BOT_TOKEN,), BUILD_ONLY)
    ci = yaml.safe_load((jobs / "mlgen.yaml").read_text())["ci"]
    ci["jenkins"]["url"] = jenkins_env.url
    return drift_model(tmp_path / "model", "jenkins", ci)


def test_drift_job_builds_the_jenkins_job_with_the_secrets_files(
        jenkins_model: Path, jenkins_env: JenkinsEmulator,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    job, _ = rendered(jenkins_model)
    assert_mounts_the_secret(job, "jenkins")
    secret = tmp_path / "secret"
    secret_files(secret, {"JENKINS_USER": BOT, "JENKINS_API_TOKEN": BOT_TOKEN})
    code, out, err = run_drift_job(jenkins_model, secret, monkeypatch, capsys)
    assert code == 1, err  # drift
    branch = jenkins_env.state.find(["ml", "retail", MODEL, "main"])
    assert branch is not None
    [build] = branch.builds
    assert build.user == BOT
    reason = build.params["RETRAIN_REASON"]
    assert reason.startswith("drift in 3 of 6 features (50%): ")
    assert all(name in reason for name in SHIFTED)
    report = drift_report(jenkins_model)
    action = retrain_action(report)
    assert action["status"] == "triggered" and action["hook"] == "jenkins"
    assert action["detail"].endswith(f"/job/{MODEL}/job/main/{build.number}/")
    assert f"retrain started via jenkins: {action['detail']}" in err
    for text in (out, err, report):
        assert BOT_TOKEN not in text


def test_drift_job_dispatches_the_github_workflow_with_the_secrets_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator() as emu:
        emu.add_repo("bank/credit", {"README.md": "x"}, default_branch="trunk",
                     permissions={BOT: "write"})
        emu.add_user(BOT, BOT_TOKEN)
        root = drift_model(tmp_path / "model", "github",
                           {"github": {"repository": "bank/credit", "default_branch": "trunk"}})
        job, _ = rendered(root)
        assert_mounts_the_secret(job, "github")
        secret = tmp_path / "secret"
        secret_files(secret, {"GITHUB_TOKEN": BOT_TOKEN})
        # Not a credential: where the API is (a GitHub Enterprise pod sets it the same way).
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        code, out, err = run_drift_job(root, secret, monkeypatch, capsys)
        assert code == 1, err
        [dispatch] = emu.state.repo("bank", "credit").dispatches
        assert dispatch["user"] == BOT
        assert dispatch["workflow"] == "drift.yml" and dispatch["ref"] == "trunk"
        assert dispatch["inputs"]["reason"].startswith("drift in 3 of 6 features (50%): ")
        report = drift_report(root)
        action = retrain_action(report)
        assert action["status"] == "triggered" and action["hook"] == "github"
        assert "retrain started via github: " in err
        for text in (out, err, report):
            assert BOT_TOKEN not in text


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["missing", "empty", "newline"])
def test_drift_job_with_a_missing_or_empty_jenkins_token_file_says_which(
        content: str | None, jenkins_model: Path, jenkins_env: JenkinsEmulator,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret"
    secret_files(secret, {"JENKINS_USER": BOT})
    token = secret / "JENKINS_API_TOKEN"
    if content is not None:
        token.write_text(content)
    code, out, err = run_drift_job(jenkins_model, secret, monkeypatch, capsys)
    # The drift verdict stands (exit 1, not 0); the retrain is recorded as failed.
    assert code == 1, err
    problem = ("the file is empty; put the JENKINS_API_TOKEN in it" if content is not None
               else "cannot read the file (No such file or directory)")
    line = ("retrain hook 'jenkins' failed: jenkins retrain hook: "
            f"JENKINS_API_TOKEN_FILE={token}: {problem}")
    assert line in err
    action = retrain_action(drift_report(jenkins_model))
    assert action["status"] == "failed"
    assert action["detail"] == line.removeprefix("retrain hook 'jenkins' failed: ")
    branch = jenkins_env.state.find(["ml", "retail", MODEL, "main"])
    assert branch is not None and branch.builds == []
    assert "retrain started" not in err and "Traceback" not in out + err


@pytest.mark.parametrize("content", [None, ""], ids=["missing", "empty"])
def test_drift_job_with_a_missing_or_empty_github_token_file_says_which(
        content: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator() as emu:
        emu.add_repo("bank/credit", {"README.md": "x"}, default_branch="trunk")
        root = drift_model(tmp_path / "model", "github",
                           {"github": {"repository": "bank/credit", "default_branch": "trunk"}})
        secret = tmp_path / "secret"
        secret.mkdir()
        token = secret / "GITHUB_TOKEN"
        if content is not None:
            token.write_text(content)
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        code, _out, err = run_drift_job(root, secret, monkeypatch, capsys)
        assert code == 1, err
        problem = ("the file is empty; put the GITHUB_TOKEN in it" if content is not None
                   else "cannot read the file (No such file or directory)")
        assert ("retrain hook 'github' failed: github retrain hook: "
                f"GITHUB_TOKEN_FILE={token}: {problem}") in err
        assert retrain_action(drift_report(root))["status"] == "failed"
        assert emu.state.repo("bank", "credit").dispatches == []


def golden_drift_jobs() -> list[Path]:
    return sorted(EXAMPLES.glob("**/k8s/base/cronjob-drift.yaml"))


@pytest.mark.parametrize("path", golden_drift_jobs(),
                         ids=lambda p: "/".join(p.relative_to(EXAMPLES).parts[:-3]))
def test_golden_drift_cronjobs_mount_the_secret_only_for_a_jenkins_or_github_hook(
        path: Path) -> None:
    spec = yaml.safe_load((path.parents[2] / "mlgen.yaml").read_text())
    hook = (spec.get("drift") or {}).get("retrain_hook", "none")
    job = yaml.safe_load(path.read_text())
    if hook in KEYS:
        assert_mounts_the_secret(job, hook, spec["name"])
    else:
        assert "env" not in pod(job)["containers"][0]
        assert "retrain-credentials" not in [v["name"] for v in pod(job)["volumes"]]


def test_a_golden_example_uses_a_credentialed_hook() -> None:
    # Otherwise the test above would check only the absence of the Secret.
    hooks = {yaml.safe_load((p.parents[2] / "mlgen.yaml").read_text()).get("drift", {})
             .get("retrain_hook") for p in golden_drift_jobs()}
    assert hooks & set(KEYS)


WRONG_TOKEN = "wrong-token-0d9e8c7b6a"


def test_drift_job_with_a_rejected_jenkins_token_fails_without_echoing_it(
        jenkins_model: Path, jenkins_env: JenkinsEmulator,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret"
    secret_files(secret, {"JENKINS_USER": BOT, "JENKINS_API_TOKEN": WRONG_TOKEN})
    code, out, err = run_drift_job(jenkins_model, secret, monkeypatch, capsys)
    assert code == 1, err
    # The pod has no JENKINS_API_TOKEN to check: the hint names the files it read.
    assert (f"did not accept the credentials of user '{BOT}'; check "
            f"JENKINS_USER_FILE={secret}/JENKINS_USER and "
            f"JENKINS_API_TOKEN_FILE={secret}/JENKINS_API_TOKEN") in err
    report = drift_report(jenkins_model)
    assert retrain_action(report)["status"] == "failed"
    branch = jenkins_env.state.find(["ml", "retail", MODEL, "main"])
    assert branch is not None and branch.builds == []
    for text in (out, err, report):
        assert WRONG_TOKEN not in text


def test_drift_job_with_a_rejected_github_token_fails_without_echoing_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator() as emu:
        emu.add_repo("bank/credit", {"README.md": "x"}, default_branch="trunk")
        root = drift_model(tmp_path / "model", "github",
                           {"github": {"repository": "bank/credit", "default_branch": "trunk"}})
        secret = tmp_path / "secret"
        secret_files(secret, {"GITHUB_TOKEN": WRONG_TOKEN})
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        code, out, err = run_drift_job(root, secret, monkeypatch, capsys)
        assert code == 1, err
        assert "retrain hook 'github' failed: github retrain hook: " in err
        report = drift_report(root)
        assert retrain_action(report)["status"] == "failed"
        assert emu.state.repo("bank", "credit").dispatches == []
        for text in (out, err, report):
            assert WRONG_TOKEN not in text
