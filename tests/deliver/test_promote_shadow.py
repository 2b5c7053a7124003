"""A shadow challenger (kubernetes.challenger.mode: shadow) on the emulated cluster: deployed
beside the champion but outside its Service, and promoted or rolled back by `mlgen promote
--from-cluster --apply` from the shadow's /metrics and the champion's mirroring counters."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from mlgen.models.serving.metrics import LAYOUT, WorkerMetrics, render

from tests.deliver.conftest import mlgen
from tests.deliver.test_promote_apply import (
    CHALLENGER,
    CHALLENGER_IMAGE,
    CHAMPION,
    GOOD,
    NS,
    image,
    live,
    pods,
    promote,
)
from tests.emulators.kubernetes import KubernetesEmulator
from tests.helpers import EXAMPLES, run_mlgen


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (it builds the overlays)")
    root = tmp_path_factory.mktemp("shadow") / "credit-risk"
    shutil.copytree(EXAMPLES / "credit-risk", root)
    spec_path = root / "mlgen.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    challenger = spec["kubernetes"]["challenger"]
    del challenger["weight"]
    challenger["mode"] = "shadow"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    done = run_mlgen("-C", str(root), "render", "--only", "kubernetes", timeout=120)
    assert done.returncode == 0, done.stderr
    return root


def metrics_text(folder: Path, requests: int, score: float, *, mirrored: int = 0,
                 failed: int = 0, disagreeing: int = 0) -> str:
    """A server's /metrics through the real renderer; `mirrored`/`failed` are the champion's
    mirroring counters (what serving/shadow.py counts)."""
    worker = WorkerMetrics(folder, 0)
    for _ in range(requests):
        worker.request("/predict", 200, 0.02)
        worker.predictions([int(score > 0.5)], [score], None)
    worker.add(LAYOUT.shadow_sent, mirrored)
    worker.add(LAYOUT.shadow_failed, failed)
    worker.add(LAYOUT.shadow_compared_rows, mirrored)
    worker.add(LAYOUT.shadow_disagreeing_rows, disagreeing)
    worker.close()
    return render(folder, "credit-risk", "1.4.0", "classification", ["0", "1"], 1)


def deployed(project: Path, cluster, tmp_path: Path, *, failed: int = 0
             ) -> tuple[KubernetesEmulator, Path]:
    emulator, kubeconfig = cluster
    out = mlgen(project, kubeconfig, "deploy", "prod", "--digest", GOOD, "--poll-interval",
                "0.1")
    assert out.returncode == 0, out.stderr
    emulator.state.metrics[GOOD] = metrics_text(tmp_path / "champion", 150, 0.3,
                                                mirrored=150 - failed, failed=failed,
                                                disagreeing=6)
    emulator.state.metrics[CHALLENGER_IMAGE] = metrics_text(tmp_path / "shadow",
                                                            150 - failed, 0.3)
    return emulator, kubeconfig


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_shadow_runs_outside_the_champions_service(project: Path, cluster,
                                                       tmp_path: Path) -> None:
    emulator, _ = deployed(project, cluster, tmp_path)
    objects = emulator.state.objects
    assert image(emulator, CHALLENGER) == CHALLENGER_IMAGE
    champion_pods = pods(emulator, CHAMPION)
    shadow_pods = pods(emulator, CHALLENGER)
    # As many shadow pods as the champion's autoscaling minimum (prod: 3), not a weight.
    assert len(shadow_pods) == 3

    def labels(pod: str) -> dict[str, str]:
        return dict(objects[("v1", "pods", NS, pod)]["metadata"]["labels"])

    service = objects[("v1", "services", NS, CHAMPION)]["spec"]["selector"]
    assert all(_selects(service, labels(p)) for p in champion_pods)
    assert not any(_selects(service, labels(p)) for p in shadow_pods)
    shadow_service = objects[("v1", "services", NS, f"{CHAMPION}-shadow")]["spec"]["selector"]
    assert all(_selects(shadow_service, labels(p)) for p in shadow_pods)
    assert not any(_selects(shadow_service, labels(p)) for p in champion_pods)
    # Only the champion's container is told where to mirror (the ConfigMap, which the shadow
    # reads too, is not).
    champion_env = live(emulator, CHAMPION)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert champion_env == [{"name": "MLGEN_SHADOW_URL",
                             "value": f"http://{CHAMPION}-shadow:8080"}]
    assert "env" not in live(emulator, CHALLENGER)["spec"]["template"]["spec"]["containers"][0]
    config = objects[("v1", "configmaps", NS, f"{CHAMPION}-config")]["data"]
    assert "MLGEN_SHADOW_URL" not in config


def test_a_shadow_within_thresholds_is_promoted(project: Path, cluster, tmp_path: Path) -> None:
    emulator, kubeconfig = deployed(project, cluster, tmp_path)
    out = promote(project, kubeconfig, "--apply", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["decision"] == "promote" and doc["rollout"]["result"] == "succeeded", doc
    checks = {c["metric"]: c for c in doc["checks"]}
    assert checks["mirror_failure_rate"]["challenger"] == 0.0
    assert checks["disagreement_rate"]["challenger"] == pytest.approx(6 / 150)
    assert checks["disagreement_rate"]["limit"] is None  # reported, not judged
    assert image(emulator, CHAMPION) == CHALLENGER_IMAGE
    assert live(emulator, CHALLENGER)["spec"]["replicas"] == 0
    assert pods(emulator, CHALLENGER) == []


def test_copies_the_shadow_failed_to_answer_roll_it_back(project: Path, cluster,
                                                         tmp_path: Path) -> None:
    # 10 of 150 copies refused or past the deadline: above max_error_rate (0.005), although
    # every request the shadow did answer was a 200.
    emulator, kubeconfig = deployed(project, cluster, tmp_path, failed=10)
    out = promote(project, kubeconfig, "--apply")
    assert out.returncode == 1, out.stderr
    assert "ROLL BACK: challenger over threshold: mirror_failure_rate" in out.stdout
    assert live(emulator, CHALLENGER)["spec"]["replicas"] == 0
    assert image(emulator, CHAMPION).endswith(GOOD)


def test_network_policies_let_the_champion_reach_the_shadow_only(project: Path, cluster,
                                                                 tmp_path: Path) -> None:
    emulator, _ = deployed(project, cluster, tmp_path)
    objects = emulator.state.objects
    policies = {k[3]: v["spec"] for k, v in objects.items() if k[1] == "networkpolicies"}
    assert set(policies) == {CHAMPION, f"{CHAMPION}-mirror", f"{CHAMPION}-shadow"}
    pod_labels = {k[3]: v["metadata"]["labels"] for k, v in objects.items() if k[1] == "pods"}
    champion_pods = set(pods(emulator, CHAMPION))
    shadow_pods = set(pods(emulator, CHALLENGER))

    def selected(spec: dict) -> set[str]:
        wanted = spec["podSelector"]["matchLabels"]
        return {p for p, labels in pod_labels.items() if _selects(wanted, labels)}

    # Every pod is under a policy; the base one does not cover the shadow's pods.
    assert selected(policies[CHAMPION]) == champion_pods
    assert selected(policies[f"{CHAMPION}-shadow"]) == shadow_pods
    assert policies[f"{CHAMPION}-shadow"]["policyTypes"] == ["Ingress", "Egress"]
    assert {p["port"] for r in policies[f"{CHAMPION}-shadow"]["egress"]
            for p in r["ports"]} == {53}
    # The mirror policy: champion pods may reach shadow pods on the serve port, nothing else.
    mirror = policies[f"{CHAMPION}-mirror"]
    assert selected(mirror) == champion_pods and mirror["policyTypes"] == ["Egress"]
    [rule] = mirror["egress"]
    [peer] = rule["to"]
    assert {p for p, labels in pod_labels.items()
            if _selects(peer["podSelector"]["matchLabels"], labels)} == shadow_pods
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
