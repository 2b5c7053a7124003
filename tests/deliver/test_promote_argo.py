"""`mlgen promote --from-cluster --apply` on an Argo Rollouts canary, through the real
`kubernetes` client against the emulator (tests/emulators/argo_rollouts.py plays the Argo
Rollouts controller; every Rollout written is checked against the vendored CRD schema).

The card-fraud example with fixed replicas (4 pods in prod, weight 25: one canary pod) goes
through Argo's lifecycle as docs/canary.md describes it: `mlgen deploy prod` with image_tag at
the running version creates the Rollout (stable at once), a second deploy with the candidate's
image_tag starts the canary (paused), then promote or abort.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mlgen.commands.init import create_project
from mlgen.integrations.kubernetes import Cluster, KubernetesApiError
from mlgen.models.serving.metrics import WorkerMetrics, render

from tests.deliver.conftest import mlgen
from tests.emulators.kubernetes import Broken, KubernetesEmulator
from tests.helpers import EXAMPLES

GOOD = "sha256:" + "cd" * 32
NS, NAME = "payments-fraud", "card-fraud"
STABLE_IMAGE = "ghcr.io/bank-ml/card-fraud:2.1.0"
CANARY_IMAGE = "ghcr.io/bank-ml/card-fraud:2.2.0-rc1"


def spec_text(image_tag: str) -> str:
    text = (EXAMPLES / "card-fraud" / "mlgen.yaml").read_text(encoding="utf-8")
    text = text.replace("  autoscaling: {min: 4, max: 16, cpu_utilization: 70}\n",
                        "  replicas: 4\n  autoscaling: {enabled: false}\n")
    text = text.replace("  overlays:\n    staging:\n"
                        "      autoscaling: {min: 1, max: 2, cpu_utilization: 80}\n", "")
    assert "autoscaling: {enabled: false}" in text and "overlays:" not in text
    return text.replace('image_tag: "2.2.0-rc1"', f'image_tag: "{image_tag}"')


def render_with(project: Path, image_tag: str) -> None:
    text = spec_text(image_tag)
    (project / "mlgen.yaml").write_text(text, encoding="utf-8")
    create_project(project, text, force=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (it builds the overlays)")
    root = tmp_path / "card-fraud"
    root.mkdir()
    render_with(root, "2.1.0")
    return root


def metrics_text(folder: Path, requests: int, score: float, errors: int = 0) -> str:
    worker = WorkerMetrics(folder, 0)
    for i in range(requests):
        worker.request("/predict", 500 if i < errors else 200, 0.02)
        worker.predictions([int(score > 0.5)], [score], None)
    worker.close()
    return render(folder, NAME, "2.1.0", "classification", ["0", "1"], 1)


def deploy(project: Path, kubeconfig: Path) -> None:
    out = mlgen(project, kubeconfig, "deploy", "prod", "--digest", GOOD, "--poll-interval",
                "0.1")
    assert out.returncode == 0, out.stderr


def rollout(emulator: KubernetesEmulator) -> dict[str, Any]:
    return emulator.state.objects[("argoproj.io/v1alpha1", "rollouts", NS, NAME)]


def rollout_pods(emulator: KubernetesEmulator) -> dict[str, list[str]]:
    """Images of the Rollout's pods by track label."""
    out: dict[str, list[str]] = {}
    for (_, plural, ns, _), pod in emulator.state.objects.items():
        labels = pod["metadata"].get("labels", {}) if plural == "pods" and ns == NS else {}
        if "rollouts-pod-template-hash" in labels:
            out.setdefault(labels["mlgen.dev/track"], []).append(
                pod["spec"]["containers"][0]["image"])
    return out


def canary_running(project: Path, cluster: tuple[KubernetesEmulator, Path], tmp_path: Path,
                   errors: int = 0) -> tuple[KubernetesEmulator, Path]:
    emulator, kubeconfig = cluster
    deploy(project, kubeconfig)  # the Rollout adopts the running version: stable, no steps
    assert rollout(emulator)["status"]["phase"] == "Healthy"
    render_with(project, "2.2.0-rc1")
    deploy(project, kubeconfig)  # the template changes: the canary starts and pauses
    emulator.state.metrics[STABLE_IMAGE] = metrics_text(tmp_path / "stable", 150, 0.3)
    emulator.state.metrics[CANARY_IMAGE] = metrics_text(tmp_path / "canary", 150, 0.3, errors)
    return emulator, kubeconfig


def promote(project: Path, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return mlgen(project, kubeconfig, "promote", "prod", "--from-cluster", "--poll-interval",
                 "0.1", *args)


def test_a_template_change_pauses_the_canary_at_its_weight(project: Path, cluster,
                                                           tmp_path: Path) -> None:
    emulator, _ = canary_running(project, cluster, tmp_path)
    status = rollout(emulator)["status"]
    assert status["phase"] == "Paused"
    assert [c["reason"] for c in status["pauseConditions"]] == ["CanaryPauseStep"]
    assert rollout_pods(emulator) == {"challenger": [CANARY_IMAGE],
                                      "champion": [STABLE_IMAGE] * 3}


def test_promote_clears_the_pause_and_waits_for_the_challenger_to_be_stable(
        project: Path, cluster, tmp_path: Path) -> None:
    emulator, kubeconfig = canary_running(project, cluster, tmp_path)
    out = promote(project, kubeconfig, "--apply", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["decision"] == "promote" and doc["engine"] == "argo-rollouts"
    assert doc["rollout"]["result"] == "succeeded", doc
    status = rollout(emulator)["status"]
    assert status["phase"] == "Healthy" and status["stableRS"] == status["currentPodHash"]
    assert "pauseConditions" not in status
    assert rollout_pods(emulator) == {"champion": [CANARY_IMAGE] * 4}
    patches = [r for r in emulator.state.requests if r["method"] == "PATCH"
               and r["path"].endswith(f"/rollouts/{NAME}/status")]
    assert [r["content_type"] for r in patches] == ["application/merge-patch+json"]
    proxied = [r["path"] for r in emulator.state.requests if "/proxy/metrics" in r["path"]]
    assert len(proxied) == 4  # three stable pods and the canary's
    assert "keep kubernetes.challenger" in out.stderr


def test_a_promotion_argo_cannot_finish_is_a_failure(project: Path, cluster,
                                                     tmp_path: Path) -> None:
    emulator, kubeconfig = canary_running(project, cluster, tmp_path)
    # The canary's first pod serves; the pods Argo adds at 100% never become ready.
    serving = [k[3] for k in emulator.state.objects if k[1] == "pods"
               and emulator.state.objects[k]["metadata"]["labels"].get("mlgen.dev/track")
               == "challenger"]
    emulator.state.broken.append(Broken("2.2.0-rc1", "never-ready",
                                        pods=rf"^(?!{serving[0]}$){NAME}-"))
    emulator.state.progress_deadline_seconds = 1.0
    out = promote(project, kubeconfig, "--apply", "--json", "--rollout-timeout", "30")
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["decision"] == "promote"
    assert doc["rollout"]["result"] == "failed" and doc["rollout"]["phase"] == "Degraded"
    assert "ProgressDeadlineExceeded" in doc["rollout"]["reason"]
    status = rollout(emulator)["status"]
    assert status["stableRS"] != status["currentPodHash"]  # Argo kept the old stable


def test_rollback_aborts_and_argo_returns_to_stable(project: Path, cluster,
                                                   tmp_path: Path) -> None:
    emulator, kubeconfig = canary_running(project, cluster, tmp_path, errors=20)
    out = promote(project, kubeconfig, "--apply")
    assert out.returncode == 1, out.stderr
    assert "ROLL BACK: challenger over threshold: error_rate" in out.stdout
    status = rollout(emulator)["status"]
    assert status["abort"] is True and status["phase"] == "Degraded"
    assert status["message"].startswith("RolloutAborted")
    assert rollout_pods(emulator) == {"champion": [STABLE_IMAGE] * 4}
    # Setting image_tag back to the stable version is a rollback to stable: Healthy at once.
    render_with(project, "2.1.0")
    deploy(project, kubeconfig)
    status = rollout(emulator)["status"]
    assert status["phase"] == "Healthy" and "abort" not in status


def test_a_rollout_without_a_canary_is_unusable_input(project: Path, cluster,
                                                      tmp_path: Path) -> None:
    emulator, kubeconfig = cluster
    deploy(project, kubeconfig)
    emulator.state.metrics[STABLE_IMAGE] = metrics_text(tmp_path / "stable", 150, 0.3)
    out = promote(project, kubeconfig, "--apply")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "no ready challenger pod" in out.stderr
    out = mlgen(project, kubeconfig, "promote", "prod", "--champion", "http://127.0.0.1:9/m",
                "--challenger", "http://127.0.0.1:9/m")
    assert out.returncode == 2  # unreachable servers, before anything else


def test_dry_run_prints_the_plugins_patches_and_changes_nothing(project: Path, cluster,
                                                               tmp_path: Path) -> None:
    emulator, kubeconfig = canary_running(project, cluster, tmp_path)
    before = rollout(emulator)["metadata"]["resourceVersion"]
    out = promote(project, kubeconfig, "--apply", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert f"patch Rollout {NS}/{NAME} status: pauseConditions null" in out.stdout
    assert rollout(emulator)["metadata"]["resourceVersion"] == before


def test_the_emulator_refuses_a_status_patch_the_crd_schema_refuses(project: Path, cluster,
                                                                    tmp_path: Path) -> None:
    emulator, kubeconfig = cluster
    deploy(project, kubeconfig)
    client = Cluster(kubeconfig=str(kubeconfig))
    with pytest.raises(KubernetesApiError) as raised:
        client.merge_patch("argoproj.io/v1alpha1", "Rollout", NS, NAME,
                           {"status": {"abort": "yes"}}, "status")
    assert raised.value.status == 422 and "abort" in raised.value.message
    with pytest.raises(KubernetesApiError) as raised:
        client.merge_patch("argoproj.io/v1alpha1", "Rollout", NS, NAME,
                           {"status": {"pauseConditions": [{"reason": "x"}]}}, "status")
    assert raised.value.status == 422 and "startTime" in raised.value.message
    assert "abort" not in rollout(emulator)["status"]
