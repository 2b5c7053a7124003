"""The CD pipelines promote or roll back the challenger by themselves after its soak time.

For each environment that runs the challenger, the rendered GitHub Actions cd workflow has a
promote job after that environment's deploy job, and the Jenkinsfile a promote stage after its
deploy stage: wait kubernetes.challenger.soak, then `mlgen promote ENV --from-cluster --apply
--json`, whose exit 1 (rolled back) fails the job. In GitOps mode nothing is rendered (Argo CD
would undo promote's change). The workflows are parsed as YAML; the Jenkinsfile's stages are
cut out by brace matching, which is enough for the declarative subset mlgen renders.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlgen.spec_types import duration_seconds

from tests.helpers import EXAMPLES, call_mlgen

CREDIT = EXAMPLES / "credit-risk"
HOUSE = EXAMPLES / "house-prices"
PROMOTE = "mlgen promote \"$MLGEN_ENVIRONMENT\" --from-cluster --apply --json"
ROLLOUT_WAIT_SECONDS = 600  # promote's --rollout-timeout default, which the job must cover


def soak_seconds(root: Path) -> int:
    spec = yaml.safe_load((root / "mlgen.yaml").read_text())
    return duration_seconds(spec["kubernetes"]["challenger"].get("soak", "30m"))


def workflow(root: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((root / ".github/workflows/cd.yml").read_text()))


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def stages(jenkinsfile: str) -> list[tuple[str, str]]:
    """(name, body) of each top-level `stage('...') { ... }`, in order."""
    out = []
    for match in re.finditer(r"^        stage\('([^']*)'\) \{$", jenkinsfile, re.MULTILINE):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(jenkinsfile[i], 0)
            i += 1
        out.append((match.group(1), jenkinsfile[match.end():i - 1]))
    return out


def variant(tmp_path: Path, capsys: pytest.CaptureFixture[str], example: Path,
            edit: dict[str, Any]) -> Path:
    """A copy of an example with kubernetes.challenger changed, rendered afresh."""
    from ruamel.yaml import YAML

    root = tmp_path / example.name
    shutil.copytree(example, root)
    loader = YAML()
    data = loader.load((root / "mlgen.yaml").read_text())
    data["kubernetes"]["challenger"] = {**dict(data["kubernetes"].get("challenger") or {}),
                                        **edit}
    with (root / "mlgen.yaml").open("w") as fh:
        loader.dump(data, fh)
    code, out, err = call_mlgen(capsys, "-C", str(root), "render", "--force")
    assert code == 0, out + err
    return root


# ---- GitHub Actions -----------------------------------------------------------------------


def test_actions_promote_job_soaks_after_the_deploy_then_promotes() -> None:
    cd = workflow(CREDIT)
    promotes = sorted(name for name in cd["jobs"] if name.startswith("promote-"))
    assert promotes == ["promote-prod"], "only the challenger's environment (prod) promotes"
    job, deploy = cd["jobs"]["promote-prod"], cd["jobs"]["deploy-prod"]
    assert needs(job) == ["deploy-prod"]
    assert job["environment"] == deploy["environment"] == "prod"
    assert job["runs-on"] == deploy["runs-on"]
    assert job["permissions"] == {"contents": "read"}, "least privilege: it only reads the repo"
    soak = soak_seconds(CREDIT)
    assert job["timeout-minutes"] * 60 >= soak + ROLLOUT_WAIT_SECONDS
    names = [step["name"] for step in job["steps"]]
    assert names == ["Check out", "Set up Python", "Install", "Soak", "Promote or roll back"]
    wait, promote = job["steps"][-2:]
    assert wait["run"] == 'sleep "$SOAK_SECONDS"' and wait["env"] == {"SOAK_SECONDS": str(soak)}
    assert PROMOTE in promote["run"]
    assert promote["env"]["MLGEN_ENVIRONMENT"] == "prod"
    # The same kube credentials, written the same way, as the deploy step's.
    deploy_step = deploy["steps"][-1]
    assert promote["env"]["KUBECONFIG_DATA"] == deploy_step["env"]["KUBECONFIG_DATA"]
    assert promote["run"].splitlines()[:2] == deploy_step["run"].splitlines()[:2]
    # No job waits for the last environment's promote; it is the end of the run.
    assert not [n for n, j in cd["jobs"].items() if "promote-prod" in needs(j)]


def test_no_spec_text_reaches_the_promote_scripts(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = variant(tmp_path, capsys, CREDIT, {"soak": "2h"})
    job = workflow(root)["jobs"]["promote-prod"]
    for step in job["steps"][-2:]:
        assert "prod" not in step["run"] and "7200" not in step["run"], step["run"]
    assert job["steps"][-2]["env"]["SOAK_SECONDS"] == "7200"
    assert job["timeout-minutes"] * 60 >= 7200 + ROLLOUT_WAIT_SECONDS


def test_a_challenger_in_an_earlier_environment_holds_the_next_deploy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = variant(tmp_path, capsys, CREDIT, {"environments": ["dev", "staging"]})
    cd = workflow(root)
    assert sorted(n for n in cd["jobs"] if n.startswith("promote-")) == [
        "promote-dev", "promote-staging"]
    assert needs(cd["jobs"]["promote-dev"]) == ["deploy-dev"]
    assert needs(cd["jobs"]["deploy-staging"]) == ["image", "deploy-dev", "promote-dev"]
    assert needs(cd["jobs"]["deploy-prod"]) == ["image", "deploy-staging", "promote-staging"]
    # Jenkins runs its stages in order: each promote right after its own deploy.
    order = [name for name, _ in stages((root / "Jenkinsfile").read_text())]
    deploys = [n for n in order if n.startswith(("Deploy ", "Promote "))]
    assert deploys == ["Deploy dev", "Promote dev", "Deploy staging", "Promote staging",
                       "Deploy prod"]


# ---- Jenkins ------------------------------------------------------------------------------


def test_jenkins_promote_stage_sleeps_then_promotes_with_the_deploy_credentials() -> None:
    text = (CREDIT / "Jenkinsfile").read_text()
    found = stages(text)
    order = [name for name, _ in found]
    assert order.index("Promote prod") == order.index("Deploy prod") + 1
    assert [n for n in order if n.startswith("Promote ")] == ["Promote prod"]
    body, deploy = dict(found)["Promote prod"], dict(found)["Deploy prod"]
    when = re.compile(r"^ *(when \{.*\})$", re.MULTILINE)
    assert when.findall(body) == when.findall(deploy) == ["when { buildingTag() }"]
    minutes = re.search(r"options \{ timeout\(time: (\d+), unit: 'MINUTES'\) \}", body)
    assert minutes, body
    soak = soak_seconds(CREDIT)
    assert int(minutes.group(1)) * 60 >= soak + ROLLOUT_WAIT_SECONDS
    sleep = body.index(f"sleep time: {soak}, unit: 'SECONDS'")
    command = body.index("sh '.venv/bin/mlgen promote prod --from-cluster --apply --json'")
    credentials = re.search(r"withCredentials\(\[file\(credentialsId: '([^']+)', "
                            r"variable: 'KUBECONFIG'\)\]\)", body)
    assert credentials and sleep < credentials.start() < command
    assert f"credentialsId: '{credentials.group(1)}', variable: 'KUBECONFIG'" in deploy
    # The whole build's timeout leaves the promote stage its time on top of the rest.
    overall = re.search(r"^        timeout\(time: (\d+), unit: 'MINUTES'\)$", text, re.MULTILINE)
    assert overall and int(overall.group(1)) >= 90 + int(minutes.group(1))


# ---- GitOps: nothing to promote from the pipeline ------------------------------------------


def test_gitops_mode_renders_no_promote_step(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert (yaml.safe_load((HOUSE / "mlgen.yaml").read_text())["kubernetes"]["gitops"]
            ["enabled"]) is True
    root = variant(tmp_path, capsys, HOUSE, {"image_tag": "0.4.0-rc1", "soak": "1h"})
    assert (root / "k8s/challenger/deployment.yaml").is_file()  # the canary itself renders
    cd = workflow(root)
    assert not [n for n in cd["jobs"] if n.startswith("promote-")]
    text = (root / "Jenkinsfile").read_text()
    assert "mlgen promote" not in text and "mlgen promote" not in str(cd)
    assert "timeout(time: 90, unit: 'MINUTES')" in text


# ---- the rendered files pass the real linters ---------------------------------------------


@pytest.mark.slow  # actionlint, zizmor and npm-groovy-lint (a JVM) once each
def test_a_promote_variant_passes_the_linters(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tests.validate.helpers import need

    need("java", "node", node_module="actionlint")
    root = variant(tmp_path, capsys, CREDIT, {"environments": ["dev", "prod"], "soak": "90m"})
    code, out, err = call_mlgen(capsys, "-C", str(root), "validate", "--require-all",
                                "--tool", "actionlint", "--tool", "zizmor",
                                "--tool", "npm-groovy-lint", "--tool", "yamllint")
    assert code == 0, out + err
