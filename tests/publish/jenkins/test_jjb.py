"""jenkins-job-builder 6.5.0 against the emulator: a second real client, as a cross-check."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jenkins
import pytest

from tests.emulators.jenkins import JenkinsEmulator
from tests.helpers import call_mlgen

from .conftest import ADMIN_TOKEN, write_spec

JJB = Path(sys.executable).with_name("jenkins-jobs")
JOBS_YAML = """
- job:
    name: ml
    project-type: folder
- job:
    name: ml/retail
    project-type: folder
- job:
    name: ml/retail/credit-risk
    project-type: multibranch
    script-path: Jenkinsfile
    scm:
      - github:
          repo: credit-risk
          repo-owner: bank-ml
          credentials-id: github-app
"""


def jjb(emulator: JenkinsEmulator, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "jjb.ini"
    conf.write_text(f"[jenkins]\nurl={emulator.url}\nuser=admin\npassword={ADMIN_TOKEN}\n"
                    "query_plugins_info=True\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "jjb-cache"), HOME=str(tmp_path))
    return subprocess.run([str(JJB), "--conf", str(conf), *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.skipif(not JJB.exists() and shutil.which("jenkins-jobs") is None,
                    reason="jenkins-job-builder is not installed (pip install 'mlgen[dev]')")
def test_jjb_update_delete_old_and_cache_against_the_emulator(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "jobs.yaml").write_text(JOBS_YAML)
    done = jjb(jenkins_env, tmp_path, "update", str(jobs))
    assert done.returncode == 0, done.stderr
    item = jenkins_env.state.find(["ml", "retail", "credit-risk"])
    assert item is not None and item.kind == "multibranch"
    assert "Managed by Jenkins Job Builder" in item.xml  # JJB's own marker
    assert "GitHubSCMSource" in item.xml

    # A warm cache: no request about any job on the second run (so it is blind to UI edits);
    # only its start-up calls (crumb, plugin list) go out.
    jenkins_env.state.stats.clear()
    again = jjb(jenkins_env, tmp_path, "update", str(jobs))
    assert again.returncode == 0, again.stderr
    assert not [k for k in jenkins_env.state.stats if "job/" in k or k.startswith("POST")]

    # mlgen sees JJB's job as not its own, and refuses to overwrite it without --adopt.
    repo = tmp_path / "repo"
    write_spec(repo)
    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "plan", "--json")
    assert code == 1 and json.loads(out)["jobs"][0]["action"] == "conflict"

    # --delete-old removes JJB-managed jobs no longer in the YAML, through doDelete.
    (jobs / "jobs.yaml").write_text(JOBS_YAML.split("- job:\n    name: ml/retail/credit-risk")[0])
    pruned = jjb(jenkins_env, tmp_path, "update", "--delete-old", str(jobs))
    assert pruned.returncode == 0, pruned.stderr
    assert not jenkins.Jenkins(jenkins_env.url, "admin", ADMIN_TOKEN).job_exists(
        "ml/retail/credit-risk")
