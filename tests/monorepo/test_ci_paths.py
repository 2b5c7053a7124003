"""CI builds only the model whose folder changed: each model's workflows filter on its folder
(and the workflow file itself) and run in that folder; its Jenkinsfile's stages sit under one
`when { changeset }` stage. Read from the rendered example, parsed as the CI systems would."""
from __future__ import annotations

import fnmatch
import re

import pytest
import yaml

from tests.helpers import EXAMPLES

from .conftest import MODELS, MONOREPO

WORKFLOWS = MONOREPO / ".github" / "workflows"


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def github_runs(workflow_doc: dict, event: str, changed: list[str]) -> bool:
    """Whether a push/pull_request touching `changed` starts the workflow, by GitHub's rule for
    `paths`: some changed file matches some pattern (`**` crosses folders, as fnmatch's `*`)."""
    trigger = workflow_doc["on"].get(event)
    if event not in workflow_doc["on"]:
        return False
    patterns = (trigger or {}).get("paths")
    return patterns is None or any(fnmatch.fnmatchcase(f, p) for f in changed for p in patterns)


@pytest.mark.parametrize(("model", "folder"), MODELS.items())
def test_each_models_workflows_filter_on_its_folder_and_run_there(model: str, folder: str) -> None:
    for kind in ("ci", "cd"):
        doc = workflow(f"{model}-{kind}.yml")
        events = ("pull_request", "push") if kind == "ci" else ("push",)
        for event in events:
            assert doc["on"][event]["paths"] == [f"{folder}/**",
                                                 f".github/workflows/{model}-{kind}.yml"]
        assert doc["name"] == f"{model}-{kind}"
        assert doc["defaults"] == {"run": {"working-directory": folder}}
        assert model in doc["concurrency"]["group"]
    drift = workflow(f"{model}-drift.yml")
    assert drift["defaults"]["run"]["working-directory"] == folder
    assert "paths" not in str(drift["on"])  # scheduled or dispatched: no push to filter


def test_a_change_in_one_folder_starts_only_that_models_workflows() -> None:
    fraud, rent = workflow("fraud-ci.yml"), workflow("rent-ci.yml")
    change = ["models/fraud/src/fraud/features.py"]
    assert github_runs(fraud, "pull_request", change)
    assert not github_runs(rent, "pull_request", change)
    assert github_runs(rent, "push", ["models/rent/mlgen.yaml", "README.md"])
    assert not github_runs(fraud, "push", ["models/rent/mlgen.yaml", "README.md"])
    assert not github_runs(fraud, "push", ["docs/readme.md"])
    # Editing a model's workflow runs that workflow.
    assert github_runs(fraud, "push", [".github/workflows/fraud-ci.yml"])
    assert not github_runs(rent, "push", [".github/workflows/fraud-ci.yml"])


def test_artifact_steps_name_paths_from_the_repository_root() -> None:
    # `uses:` steps ignore defaults.run.working-directory: their paths start at the root.
    jobs = workflow("fraud-ci.yml")["jobs"]
    upload = next(s for s in jobs["test"]["steps"] if s["name"] == "Keep reports")
    assert all(line.startswith("models/fraud/")
               for line in upload["with"]["path"].split())
    fetch = next(s for s in jobs["report"]["steps"] if s["name"] == "Fetch reports")
    assert fetch["with"]["path"] == "models/fraud"


def test_a_single_model_repository_has_no_path_filter() -> None:
    doc = yaml.safe_load((EXAMPLES / "credit-risk/.github/workflows/ci.yml").read_text())
    assert doc["name"] == "ci" and "paths" not in str(doc["on"]) and "defaults" not in doc


@pytest.mark.parametrize(("model", "folder"), MODELS.items())
def test_the_jenkinsfile_runs_only_on_a_change_in_its_folder(model: str, folder: str) -> None:
    text = (MONOREPO / folder / "Jenkinsfile").read_text()
    gate = re.search(r"stage\('" + model + r"'\) \{\n\s+when \{\n\s+anyOf \{\n(.*?)\n\s+\}\n",
                     text, re.DOTALL)
    assert gate, "the model's stages are wrapped in one stage with a when block"
    conditions = [line.strip() for line in gate.group(1).splitlines()]
    assert conditions[0] == f"changeset pattern: '{folder}/**', comparator: 'GLOB'"
    # The first build of a branch or PR has an empty changelog: it must build, not skip.
    assert "expression { currentBuild.previousBuild == null }" in conditions
    assert "expression { params.RETRAIN_REASON != '' }" in conditions
    shells = re.findall(r"\bsh '([^']*)'", text)
    assert shells and all(s.startswith(f"cd {folder} && ") for s in shells), shells
    assert f"testResults: '{folder}/reports/junit.xml'" in text


def test_argo_cd_syncs_the_models_folder_of_the_repository() -> None:
    app = yaml.safe_load((MONOREPO / "models/rent/k8s/argocd/prod.yaml").read_text())
    assert app["spec"]["source"]["path"] == "models/rent/k8s/overlays/prod"
    assert app["spec"]["source"]["repoURL"] == "https://github.com/bank-ml/models.git"


def test_jenkins_job_script_paths_point_into_the_model_folders() -> None:
    from mlgen.publish.jenkins.fleet import single

    jobs = {m.job.full_name: m.job.script_path for m in single(MONOREPO).members}
    assert jobs == {"ml/monorepo/fraud": "models/fraud/Jenkinsfile",
                    "ml/monorepo/rent": "models/rent/Jenkinsfile"}
    # From a model folder too: all of them (prune from there must keep the other models' jobs).
    assert [m.job.full_name for m in single(MONOREPO / "models/rent").members] == list(jobs)




@pytest.mark.parametrize(("model", "folder"), MODELS.items())
def test_the_github_retrain_hook_dispatches_the_models_own_drift_workflow(
        model: str, folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgen.publish.github.retrain import make_hook
    from mlgen.spec_loader import load_spec

    config = yaml.safe_load((MONOREPO / folder / "k8s/base/configmap.yaml").read_text())
    workflow_file = config["data"]["MLGEN_GITHUB_DRIFT_WORKFLOW"]
    assert (WORKFLOWS / workflow_file).is_file() and workflow_file == f"{model}-drift.yml"
    monkeypatch.setenv("MLGEN_GITHUB_DRIFT_WORKFLOW", workflow_file)  # as envFrom sets it
    assert make_hook(load_spec(MONOREPO / folder / "mlgen.yaml")).workflow == workflow_file
    monkeypatch.delenv("MLGEN_GITHUB_DRIFT_WORKFLOW")
    assert make_hook(load_spec(MONOREPO / folder / "mlgen.yaml")).workflow == "drift.yml"


@pytest.mark.parametrize(("model", "folder"), MODELS.items())
def test_a_release_tag_deploys_only_its_model(model: str, folder: str) -> None:
    cd = workflow(f"{model}-cd.yml")
    assert cd["on"]["push"]["tags"] == [f"{model}-v*"]
    later = [job for name, job in cd["jobs"].items() if name.startswith("deploy-")][1:]
    assert later and all(job["if"] == f"startsWith(github.ref, 'refs/tags/{model}-v')"
                         for job in later)
    text = (MONOREPO / folder / "Jenkinsfile").read_text()
    assert "buildingTag()" not in text
    assert text.count(f"tag pattern: '{model}-v*', comparator: 'GLOB'") == 3  # build, push, deploy
    single = (EXAMPLES / "credit-risk/Jenkinsfile").read_text()
    assert "buildingTag()" in single and "tag pattern" not in single
