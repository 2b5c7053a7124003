"""kubernetes.challenger with engine argo-rollouts: the rendered Rollout, the overlays kustomize
builds from it, and the `rollouts-schema` check (the vendored Rollout CRD schema).

The card-fraud example runs its prod canary under Argo Rollouts (with autoscaling and Argo
CD); a house-prices variant covers fixed replicas.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlgen.commands.init import create_project
from mlgen.validate import rollouts

from tests.helpers import EXAMPLES, call_mlgen
from tests.validate.helpers import need

FRAUD = EXAMPLES / "card-fraud"
ROLLOUT = "k8s/rollouts/rollout.yaml"


def build(project: Path, environment: str) -> dict[str, dict[str, Any]]:
    """`kubectl kustomize` of one overlay, keyed by KIND/NAME."""
    need("kubectl")
    done = subprocess.run(["kubectl", "kustomize", f"k8s/overlays/{environment}"], cwd=project,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(done.stdout)}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.fixture(scope="module")
def fixed_replicas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """house-prices (no autoscaling, prod overlay replicas: 4) with an Argo Rollouts canary."""
    root = tmp_path_factory.mktemp("fixed") / "house-prices"
    root.mkdir()
    text = (EXAMPLES / "house-prices" / "mlgen.yaml").read_text(encoding="utf-8")
    # The example's challenger is a shadow; the Rollout needs a canary.
    shadow = "    mode: shadow\n"
    assert shadow in text
    text = text.replace(shadow, "    weight: 25\n    engine: argo-rollouts\n")
    (root / "mlgen.yaml").write_text(text, encoding="utf-8")
    create_project(root, text, force=True)
    return root


def test_the_rendered_rollout_passes_the_crd_schema_and_argos_rules() -> None:
    text = (FRAUD / ROLLOUT).read_text(encoding="utf-8")
    assert rollouts.check_text(ROLLOUT, text) == []
    rollout = yaml.safe_load(text)
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["steps"] == [{"setWeight": 25}, {"pause": {}}]
    assert rollout["spec"]["workloadRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": "card-fraud", "scaleDown": "onsuccess"}
    assert "template" not in rollout["spec"] and "trafficRouting" not in canary
    assert "replicas" not in rollout["spec"]  # the HPA sets them


def test_prod_builds_a_rollout_that_takes_over_the_deployment_and_its_hpa() -> None:
    built = build(FRAUD, "prod")
    rollout, deployment = built["Rollout/card-fraud"], built["Deployment/card-fraud"]
    assert "Deployment/card-fraud-challenger" not in built
    # workloadRef names a Deployment of the same build; its template runs the challenger.
    ref = rollout["spec"]["workloadRef"]
    assert built[f"{ref['kind']}/{ref['name']}"] is deployment
    template = deployment["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "ghcr.io/bank-ml/card-fraud:2.2.0-rc1"
    assert template["metadata"]["labels"]["app.kubernetes.io/version"] == "2.2.0-rc1"
    assert "replicas" not in deployment["spec"]  # Argo scales it down, nobody fights it
    assert built["HorizontalPodAutoscaler/card-fraud"]["spec"]["scaleTargetRef"] == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "card-fraud"}
    # The Rollout's pods (the Deployment's template plus Argo's track label) are selected by
    # the Rollout, the Service, the PDB and the NetworkPolicy alike.
    canary = rollout["spec"]["strategy"]["canary"]
    for extra in (canary["canaryMetadata"], canary["stableMetadata"]):
        labels = {**template["metadata"]["labels"], **extra["labels"]}
        assert selects(rollout["spec"]["selector"]["matchLabels"], labels)
        assert selects(built["Service/card-fraud"]["spec"]["selector"], labels)
        assert selects(built["PodDisruptionBudget/card-fraud"]["spec"]["selector"]
                       ["matchLabels"], labels)
        assert selects(built["NetworkPolicy/card-fraud"]["spec"]["podSelector"]["matchLabels"],
                       labels)
    assert rollouts.check_text("prod (built)",
                               yaml.safe_dump(rollout, sort_keys=False)) == []


def test_an_environment_without_the_challenger_keeps_the_plain_deployment() -> None:
    built = build(FRAUD, "staging")
    assert not any(key.startswith("Rollout/") for key in built)
    assert built["HorizontalPodAutoscaler/card-fraud"]["spec"]["scaleTargetRef"]["kind"] \
        == "Deployment"
    image = built["Deployment/card-fraud"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/bank-ml/card-fraud:2.1.0"


def test_fixed_replicas_move_from_the_deployment_to_the_rollout(fixed_replicas: Path) -> None:
    built = build(fixed_replicas, "prod")
    assert built["Rollout/house-prices"]["spec"]["replicas"] == 4  # prod's overlay
    assert "replicas" not in built["Deployment/house-prices"]["spec"]
    assert "HorizontalPodAutoscaler/house-prices" not in built
    test = build(fixed_replicas, "test")
    assert "Rollout/house-prices" not in test
    assert test["Deployment/house-prices"]["spec"]["replicas"] == 2
    rendered = yaml.safe_load((fixed_replicas / ROLLOUT).read_text(encoding="utf-8"))
    assert rendered["spec"]["replicas"] == 2  # serve.replicas; overlays patch their own
    assert not (fixed_replicas / "k8s/challenger").exists()


def test_the_vendored_schema_is_strict_and_names_its_source() -> None:
    raw = json.loads(rollouts.SCHEMA_PATH.read_text(encoding="utf-8"))
    assert "argoproj/argo-rollouts" in raw["$comment"] and "Apache-2.0" in raw["$comment"]
    schema = rollouts.rollout_schema()
    canary = schema["properties"]["spec"]["properties"]["strategy"]["properties"]["canary"]
    assert canary["additionalProperties"] is False
    assert schema["properties"]["kind"] == {"const": "Rollout"}


@pytest.mark.parametrize(("edit", "line_of", "fragment"), [
    (lambda t: t.replace("canaryMetadata:", "canaryMeta:"), "canaryMeta:",
     "unknown field(s) canaryMeta"),
    (lambda t: t.replace("setWeight: 25", "setWeight: 150"), "setWeight", "between 0 and 100"),
    (lambda t: t.replace("setWeight: 25", '"setWeight": "25"'), "setWeight",
     "'25' is not of type 'integer'"),
    (lambda t: t.replace("        - pause: {}", "        - pause: {}\n          setWeight: 50"),
     "pause", "exactly one of setWeight"),
    (lambda t: t.replace("maxSurge: 1", "maxSurge: 0"), "canary:", "can not both be zero"),
    (lambda t: t.replace("  workloadRef:\n", "  template: {spec: {containers: []}}\n"
                                             "  workloadRef:\n"), "  template: {",
     "template must be empty"),
    (lambda t: t.replace("kind: Rollout", "kind: Rollouts"), "kind:", "was expected"),
    (lambda t: t.replace("    canary:\n", "    blueGreen: {activeService: x}\n    canary:\n"),
     "strategy:", "exactly one strategy"),
])
def test_a_broken_rollout_is_a_finding_on_its_line(edit: Callable[[str], str], line_of: str,
                                                   fragment: str) -> None:
    text = edit((FRAUD / ROLLOUT).read_text(encoding="utf-8"))
    findings = rollouts.check_text(ROLLOUT, text)
    assert any(fragment in f.message for f in findings), [f.message for f in findings]
    wanted = next(i for i, line in enumerate(text.splitlines(), 1) if line_of in line)
    assert wanted in {f.line for f in findings if fragment in f.message}, findings


def test_mlgen_validate_runs_the_rollout_check(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "card-fraud"
    shutil.copytree(FRAUD, project)
    code, out, err = call_mlgen(capsys, "-C", str(project), "validate", "--tool", rollouts.NAME,
                                "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["findings"] == []
    path = project / ROLLOUT
    path.write_text(path.read_text().replace("scaleDown:", "scaledown:"), encoding="utf-8")
    code, out, err = call_mlgen(capsys, "-C", str(project), "validate", "--tool", rollouts.NAME,
                                "--format", "json")
    assert code == 1, out + err
    messages = [f["message"] for f in json.loads(out)["findings"] if f["tool"] == rollouts.NAME]
    assert any("unknown field(s) scaledown" in m for m in messages), messages
