"""`mlgen jenkins trigger` right after the first apply: a new multibranch project has no branch
jobs until Jenkins indexes it, so trigger asks for a branch scan and waits for the branch."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.emulators.jenkins import JenkinsEmulator
from tests.helpers import call_mlgen, run_mlgen

from .conftest import index_now, write_spec

JOB = "ml/retail/credit-risk"


def scans(emu: JenkinsEmulator, project: str = JOB) -> list[dict[str, object]]:
    state = requests.get(emu.url + "_emulator/state", timeout=5).json()
    return list(state["items"][project].get("scans", []))


def mlgen(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `mlgen` in a subprocess (the environment carries JENKINS_URL and the token)."""
    return run_mlgen("-C", str(repo), *args, timeout=120)


def test_apply_then_trigger_scans_waits_for_the_branch_and_builds(
        jenkins_env: JenkinsEmulator, tmp_path: Path) -> None:
    jenkins_env.state.scan_seconds = 0.8  # long enough for a few progress lines
    repo = tmp_path / "repo"
    write_spec(repo)
    applied = mlgen(repo, "jenkins", "apply")
    assert applied.returncode == 0, applied.stderr
    assert jenkins_env.state.find([*JOB.split("/"), "main"]) is None  # not indexed yet

    done = mlgen(repo, "jenkins", "trigger", "--reason", "first run", "--poll", "0.1")
    assert done.returncode == 0, done.stderr
    assert jenkins_env.state.stats["POST job/*/build"] == 1  # the scan: POST job/<mb>/build
    assert scans(jenkins_env) == [{"user": "admin", "finished": True, "found": ["main"]}]
    assert f"job {JOB}: branch main not indexed yet; requested a branch scan" in done.stderr
    assert f"waiting for Jenkins to index branch main of {JOB} ... 0 s" in done.stderr
    assert f"job {JOB}: branch main indexed after" in done.stderr
    assert f"job {JOB}/main: queued as item 1" in done.stderr
    assert f"job {JOB}/main: build #1 SUCCESS" in done.stdout
    branch = jenkins_env.state.find([*JOB.split("/"), "main"])
    assert branch is not None and branch.builds[0].params == {"RETRAIN_REASON": "first run"}


def test_a_branch_the_scan_never_finds_fails_within_the_deadline(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo)
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")[0] == 0
    started = time.monotonic()
    code, out, err = call_mlgen(
        capsys,
        "-C",
        str(repo),
        "jenkins",
        "trigger",
        "--branch",
        "feature",
        "--poll",
        "0.1",
        "--scan-timeout",
        "1",
    )
    elapsed = time.monotonic() - started
    assert code == 1 and 1 <= elapsed < 5, (elapsed, err)
    assert "Traceback" not in err and out == ""
    assert (f"job {JOB}/feature: the branch scan of {JOB} ran, but branch feature was not found "
            "within 1 s") in err
    assert "exists in the repository" in err and "credentials of the job's branch source" in err
    assert f"{jenkins_env.url}job/ml/job/retail/job/credit-risk/indexing/console" in err
    assert "waiting for Jenkins to index branch feature" in err
    assert jenkins_env.state.queue == {}  # nothing was built
    assert scans(jenkins_env)[0]["found"] == ["main"]


def test_an_indexed_branch_is_built_without_a_scan(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo)
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")[0] == 0
    index_now(jenkins_env, JOB)
    jenkins_env.state.stats.clear()
    code, out, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "trigger", "--poll", "0.02")
    assert code == 0, err
    assert f"job {JOB}/main: build #1 SUCCESS" in out
    assert "scan" not in err and "waiting for Jenkins to index" not in err
    assert [s["user"] for s in scans(jenkins_env)] == ["SYSTEM"]  # only the emulator's own
    assert jenkins_env.state.stats["GET job/*/api/json"] == 0  # not even an existence check


def test_pipeline_jobs_build_as_before_and_missing_jobs_say_why(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo, kind="pipeline")
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")[0] == 0
    code, out, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "trigger", "--poll", "0.02")
    assert code == 0 and f"job {JOB}: build #1 SUCCESS" in out, err
    assert "scan" not in err

    no_job = f"build failed: no such job on {jenkins_env.url} (run `mlgen jenkins apply` first, " \
             "or check --job/--branch)"
    code, _, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "trigger", "--job", JOB,
                             "--branch", "main", "--scan-timeout", "1")
    assert code == 1 and f"job {JOB}/main: {no_job}; {JOB} is a pipeline job, which has no " \
        "branches: drop --branch" in err
    code, _, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "trigger", "--job", "ml/retail/x")
    assert code == 1 and err.strip() == f"error: job ml/retail/x: {no_job}"
    code, _, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "trigger", "--job", "ml/gone/x")
    assert code == 1 and f"job ml/gone/x: {no_job}; ml/gone does not exist either" in err
    assert "Traceback" not in err and "scan" not in err
    # One build POST per trigger (no scan, no retry) and only the first one queued a build.
    assert jenkins_env.state.stats["POST job/*/build"] == 4 and len(jenkins_env.state.queue) == 1


def test_triggering_the_multibranch_project_itself_asks_for_a_branch(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo)
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")[0] == 0
    code, _, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "trigger", "--job", JOB)
    assert code == 1 and "Traceback" not in err
    assert f"job {JOB}: build failed: Jenkins queued no build" in err and "--branch" in err
