"""The azure-pipelines target: opt-in, the layout it promises, and the CI targets' guarantees
(no spec text reaching a script, a macro or an expression; tasks pinned; no token kept or
passed on a command line; deterministic)."""
from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from mlgen.errors import SpecError
from mlgen.project import render_artifacts
from mlgen.spec import Spec
from mlgen.spec_loader import parse_spec

from tests.helpers import EXAMPLES

from .conftest import CREDIT_RISK, HOSTILE, hostile_spec, pipeline_text, variant

# Every Azure macro, template expression and runtime expression start.
_EXPANSION = re.compile(r"\$\(|\$\{\{|\$\[")
# The only macros the file may hold: Azure's own values, in task inputs and `env:` mappings.
_ALLOWED_MACROS = {"$(Build.SourcesDirectory)", "$(System.AccessToken)"}


def steps_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for stage in doc["stages"]:
        for job in stage["jobs"]:
            if "deployment" in job:
                out += job["strategy"]["runOnce"]["deploy"]["steps"]
            else:
                out += job["steps"]
    return out


def test_not_rendered_unless_listed_in_targets() -> None:
    data = variant()
    data.pop("targets")
    spec = Spec.model_validate(data)
    assert "azure-pipelines" not in spec.targets
    assert all(a.target != "azure-pipelines" for a in render_artifacts(spec, EXAMPLES))


def test_one_file_at_ci_azure_path() -> None:
    spec = Spec.model_validate(variant(**{"ci.azure.path": "ci/azure/model.yml"}))
    mine = [a.path for a in render_artifacts(spec, EXAMPLES) if a.target == "azure-pipelines"]
    assert mine == ["ci/azure/model.yml"]


def test_stages_in_order_and_what_depends_on_what() -> None:
    doc = yaml.safe_load(pipeline_text(variant(**{"drift.current": "data/current.csv"})))
    stages = {s["stage"]: s for s in doc["stages"]}
    assert list(stages) == ["check", "validate", "model", "image", "deploy_dev",
                            "deploy_staging", "deploy_prod", "drift"]
    assert stages["check"]["dependsOn"] == stages["validate"]["dependsOn"] == []  # in parallel
    assert stages["model"]["dependsOn"] == ["check", "validate"]
    assert stages["deploy_prod"]["dependsOn"] == ["image", "deploy_staging"]
    model_steps = [s.get("bash", "") for s in stages["model"]["jobs"][0]["steps"]]
    runs = [s for s in model_steps if s.startswith(".venv/bin/mlgen run ")]
    assert runs == [f".venv/bin/mlgen run {name}" for name in CREDIT_RISK["model"]["stages"]]
    assert model_steps.index(".venv/bin/mlgen gate --report-dir reports/gate") > \
        model_steps.index(runs[-1])
    # Later environments only from a release tag, each one after the previous.
    assert "refs/tags/v" in stages["deploy_prod"]["condition"]
    assert "refs/heads/main" not in stages["deploy_prod"]["condition"]
    # Approvals: each deploy job is a deployment job on its own Azure environment.
    jobs = [stages[f"deploy_{e}"]["jobs"][0] for e in ("dev", "staging", "prod")]
    assert [j["environment"] for j in jobs] == ["credit-risk-dev", "credit-risk-staging",
                                               "credit-risk-prod"]
    # The scheduled drift check: only on the schedule, which the spec's cron drives.
    assert doc["schedules"][0]["cron"] == CREDIT_RISK["drift"]["schedule"]
    assert stages["drift"]["condition"] == "eq(variables['Build.Reason'], 'Schedule')"
    assert all("Schedule" in stages[s]["condition"] for s in ("check", "validate"))


def test_no_schedule_without_a_window_ci_can_read() -> None:
    doc = yaml.safe_load(pipeline_text(variant()))
    assert "schedules" not in doc
    assert "drift" not in [s["stage"] for s in doc["stages"]]


def test_service_connections_per_environment() -> None:
    doc = yaml.safe_load(pipeline_text(variant()))
    logins = {s["stage"]: [st["inputs"]["kubernetesServiceEndpoint"]
                           for st in s["jobs"][0]["strategy"]["runOnce"]["deploy"]["steps"]
                           if st.get("task") == "Kubernetes@1"]
              for s in doc["stages"] if s["stage"].startswith("deploy_")}
    assert logins == {"deploy_dev": ["aks-nonprod"] * 2, "deploy_staging": ["aks-nonprod"] * 2,
                      "deploy_prod": ["aks-prod"] * 2}
    registry = [st["inputs"]["containerRegistry"] for st in steps_of(doc)
                if st.get("task") == "Docker@2"]
    assert registry == ["acr-push", "acr-push"]


def test_gitops_pins_instead_of_deploying() -> None:
    text = (EXAMPLES / "house-prices" / "azure-pipelines.yml").read_text()
    doc = yaml.safe_load(text)
    steps = steps_of(doc)
    pins = [s for s in steps if "gitops pin" in s.get("bash", "")]
    assert len(pins) == len(yaml.safe_load((EXAMPLES / "house-prices" / "mlgen.yaml")
                                           .read_text())["kubernetes"]["environments"])
    assert all(s["env"]["MLGEN_GIT_PASSWORD"] == "$(System.AccessToken)" for s in pins)
    assert not any(s.get("task") == "Kubernetes@1" for s in steps)
    # The first environment skips the pipeline's own pin commits (they would pin forever).
    assert "Mlgen-Gitops-Pin" in pins[0]["bash"] and "Mlgen-Gitops-Pin" not in pins[1]["bash"]


@pytest.mark.parametrize("data", [
    pytest.param(variant(**{"drift.current": "data/current.csv"}), id="credit-risk"),
    pytest.param(variant(**{"drift.current": "data/current.csv",
                            "kubernetes.gitops": {"enabled": True,
                                                  "repo_url": "https://example.com/r.git"},
                            "ci.azure.gitops_token_variable": "GITOPS_TOKEN"}), id="gitops"),
])
def test_spec_text_never_becomes_a_macro_or_an_expression(data: dict[str, Any]) -> None:
    hostile = hostile_spec()
    hostile["kubernetes"] = {**hostile["kubernetes"], **data["kubernetes"]}
    hostile["ci"] = data["ci"]
    hostile["drift"] = {**data["drift"], "current": "data/$(System.AccessToken)/now.csv"}
    calm, wild = pipeline_text(data), pipeline_text(hostile)
    assert wild == calm  # no free text is written to the pipeline file at all
    allowed = _ALLOWED_MACROS | {f"$({data['ci']['azure'].get('gitops_token_variable')})"}
    for match in _EXPANSION.finditer(wild):
        macro = wild[match.start():wild.index(")", match.start()) + 1]
        assert macro in allowed, macro
    for step in steps_of(yaml.safe_load(wild)):
        script = step.get("bash", "")
        assert not _EXPANSION.search(script), script  # scripts read $BUILD_... from the env
        for key, value in (step.get("env") or {}).items():
            if "$(" in value:
                assert key == "MLGEN_GIT_PASSWORD", (key, value)


def test_the_token_is_mapped_only_into_the_step_that_pushes() -> None:
    text = (EXAMPLES / "house-prices" / "azure-pipelines.yml").read_text()
    doc = yaml.safe_load(text)
    holders = [s for s in steps_of(doc) if "System.AccessToken" in str(s)]
    assert holders and all("gitops pin" in s["bash"] for s in holders)
    assert all("System.AccessToken" not in s["bash"] for s in holders)  # env, not the command


@pytest.mark.parametrize("example", ["credit-risk", "house-prices"])
def test_tasks_pinned_and_checkouts_keep_no_token(example: str) -> None:
    doc = yaml.safe_load((EXAMPLES / example / "azure-pipelines.yml").read_text())
    steps = steps_of(doc)
    tasks = [s["task"] for s in steps if "task" in s]
    assert tasks and all(re.fullmatch(r"[A-Za-z]+@[0-9]+", t) for t in tasks), tasks
    kinds = {next(iter(s)) for s in steps}
    assert kinds <= {"task", "bash", "checkout", "download"}, kinds
    checkouts = [s for s in steps if "checkout" in s]
    assert checkouts and all(s["persistCredentials"] is False for s in checkouts)


def test_rendering_is_deterministic() -> None:
    assert pipeline_text(variant()) == pipeline_text(variant())
    assert pipeline_text(hostile_spec()) == pipeline_text(variant(**{"drift.current": "d.csv"}))


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("registry_connection", "acr $(System.AccessToken)", "ci.azure.registry_connection"),
    ("kubernetes_connection", "aks\nprod", "ci.azure.kubernetes_connection"),
    ("pool", "pool ${{ variables.x }}", "ci.azure.pool"),
    ("vm_image", "ubuntu-$[variables.x]", "ci.azure.vm_image"),
    ("gitops_token_variable", "X) $(Y", "ci.azure.gitops_token_variable"),
    ("kubernetes_connections", {"qa": "aks-qa"}, "names unknown environment(s) qa"),
])
def test_names_that_could_expand_are_refused(key: str, value: Any, fragment: str) -> None:
    data = variant(**{f"ci.azure.{key}": value})
    with pytest.raises(SpecError) as caught:
        parse_spec(yaml.safe_dump(data, allow_unicode=True), "mlgen.yaml")
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("mlgen.yaml:")


def test_hostile_text_is_still_in_the_spec() -> None:
    """The fixture is what the other tests say it is: the free text holds every expansion."""
    assert all(token in HOSTILE for token in ("$(", "${{", "$["))
    spec = Spec.model_validate(hostile_spec())
    assert HOSTILE in spec.description and HOSTILE in spec.model.stages["train"]
