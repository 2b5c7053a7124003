"""The "jenkins" retrain hook registered in mlgen.publish.retrain starts the model's job with a
reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlgen.publish.retrain import RetrainError, get_hook
from mlgen.spec_loader import load_spec

from tests.emulators.jenkins import JenkinsEmulator
from tests.helpers import call_mlgen

from .conftest import write_spec


def test_drift_retrain_hook_builds_the_default_branch(jenkins_env: JenkinsEmulator, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    spec_file = write_spec(repo)
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")[0] == 0
    hook = get_hook("jenkins", load_spec(spec_file))
    url = hook.trigger("psi above 0.2", {"drifted": ["income"]})
    assert url.endswith("/job/ml/job/retail/job/credit-risk/job/main/1/")
    branch = jenkins_env.state.find(["ml", "retail", "credit-risk", "main"])
    assert branch is not None
    assert branch.builds[0].params == {"RETRAIN_REASON": 'psi above 0.2 (drifted: ["income"])'}


def test_retrain_hook_failure_is_a_retrain_error(
    jenkins_env: JenkinsEmulator, tmp_path: Path
) -> None:
    spec_file = write_spec(tmp_path / "repo")  # never applied: the job does not exist
    with pytest.raises(RetrainError, match="jenkins retrain hook: .*ml/retail/credit-risk/main"):
        get_hook("jenkins", load_spec(spec_file)).trigger("drift", {})
