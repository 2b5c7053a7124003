"""`mlgen promote --from-cluster --apply` through the real `kubernetes` client, emulated API.

The credit-risk example runs a challenger in prod. Each test deploys prod to the emulator
(tests/emulators/kubernetes.py, every object schema-checked), gives both Deployments' pods
the /metrics text the real server code (`mlgen.models.serving.metrics`) renders, and runs
promote through the CLI.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from mlgen.models.serving.metrics import WorkerMetrics, render

from tests.deliver.conftest import mlgen
from tests.emulators.kubernetes import (
    Broken,
    KubernetesEmulator,
)
from tests.helpers import EXAMPLES

GOOD = "sha256:" + "ab" * 32
NS, CHAMPION, CHALLENGER = "ml-credit-risk", "credit-risk", "credit-risk-challenger"
CHALLENGER_IMAGE = "myacr.azurecr.io/ml/credit-risk:1.5.0-rc1"  # from examples' mlgen.yaml


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (it builds the overlays)")
    root = tmp_path_factory.mktemp("promote") / "credit-risk"
    shutil.copytree(EXAMPLES / "credit-risk", root)
    return root


def metrics_text(folder: Path, requests: int, score: float, errors: int = 0) -> str:
    """What a model server answered `requests` predictions with exports (the real renderer)."""
    worker = WorkerMetrics(folder, 0)
    for i in range(requests):
        worker.request("/predict", 500 if i < errors else 200, 0.02)
        worker.predictions([int(score > 0.5)], [score], None)
    worker.close()
    return render(folder, "credit-risk", "1.4.0", "classification", ["0", "1"], 1)


def live(emulator: KubernetesEmulator, name: str) -> dict:
    return emulator.state.objects[("apps/v1", "deployments", NS, name)]


def image(emulator: KubernetesEmulator, name: str) -> str:
    return str(live(emulator, name)["spec"]["template"]["spec"]["containers"][0]["image"])


def pods(emulator: KubernetesEmulator, name: str) -> list[str]:
    return [k[3] for k in emulator.state.objects if k[1] == "pods" and k[3].startswith(name)
            and (name != CHAMPION or not k[3].startswith(CHALLENGER))]


def deployed(project: Path, cluster, tmp_path: Path, challenger_score: float = 0.3,
             challenger_errors: int = 0) -> tuple[KubernetesEmulator, Path]:
    emulator, kubeconfig = cluster
    out = mlgen(project, kubeconfig, "deploy", "prod", "--digest", GOOD, "--poll-interval",
                "0.1")
    assert out.returncode == 0, out.stderr
    emulator.state.metrics[GOOD] = metrics_text(tmp_path / "champion", 150, 0.3)
    emulator.state.metrics[CHALLENGER_IMAGE] = metrics_text(
        tmp_path / "challenger", 150, challenger_score, challenger_errors)
    return emulator, kubeconfig


def promote(project: Path, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return mlgen(project, kubeconfig, "promote", "prod", "--from-cluster", "--poll-interval",
                 "0.1", *args)


def test_deploy_keeps_the_challenger_on_its_own_tag(project: Path, cluster,
                                                    tmp_path: Path) -> None:
    emulator, _ = deployed(project, cluster, tmp_path)
    assert image(emulator, CHAMPION) == f"myacr.azurecr.io/ml/credit-risk@{GOOD}"
    assert image(emulator, CHALLENGER) == CHALLENGER_IMAGE
    assert len(pods(emulator, CHALLENGER)) == 1


def test_promote_moves_the_champion_and_scales_the_challenger_to_zero(
        project: Path, cluster, tmp_path: Path) -> None:
    emulator, kubeconfig = deployed(project, cluster, tmp_path)
    fields_before = json.dumps(live(emulator, CHAMPION)["spec"]["template"]["spec"]
                               ["containers"][0]["resources"])
    out = promote(project, kubeconfig, "--apply", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["decision"] == "promote" and doc["applied"] is True
    assert doc["rollout"]["result"] == "succeeded" and doc["rollout"]["revision"] == "2"
    assert image(emulator, CHAMPION) == CHALLENGER_IMAGE
    assert live(emulator, CHALLENGER)["spec"]["replicas"] == 0
    assert pods(emulator, CHALLENGER) == []
    assert "scaled Deployment ml-credit-risk/credit-risk-challenger to 0" in out.stderr
    # Re-applying mlgen's own fields kept everything else deploy had applied.
    assert json.dumps(live(emulator, CHAMPION)["spec"]["template"]["spec"]["containers"][0]
                      ["resources"]) == fields_before
    proxied = [r["path"] for r in emulator.state.requests if "/proxy/metrics" in r["path"]]
    assert any(CHALLENGER in p for p in proxied) and any(
        f"/pods/{CHAMPION}-" in p and CHALLENGER not in p for p in proxied)
    writes = [r for r in emulator.state.requests if r["method"] == "PATCH"]
    assert {r["content_type"] for r in writes} == {"application/apply-patch+yaml"}
    managers = {m["manager"] for m in live(emulator, CHAMPION)["metadata"]["managedFields"]}
    assert managers == {"mlgen", "mlgen-status"}
    # The next deploy (same manager) applies without a field conflict.
    again = mlgen(project, kubeconfig, "deploy", "prod", "--digest", GOOD, "--poll-interval",
                  "0.1")
    assert again.returncode == 0, again.stderr


def test_promote_whose_rollout_fails_restores_the_champion(project: Path, cluster,
                                                           tmp_path: Path) -> None:
    emulator, kubeconfig = deployed(project, cluster, tmp_path)
    # The challenger's build serves as a canary, but not as the champion (say, it needs more
    # memory than the champion's pods get): the champion's new pods crash.
    emulator.state.broken.append(Broken("1.5.0-rc1", "crash-loop",
                                        pods=rf"^{CHAMPION}-[0-9a-f]{{10}}-"))
    out = promote(project, kubeconfig, "--apply", "--json", "--rollout-timeout", "20")
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["decision"] == "promote"
    assert doc["rollout"]["result"] == "rolled-back", doc
    assert "CrashLoopBackOff" in doc["rollout"]["reason"]
    assert image(emulator, CHAMPION) == f"myacr.azurecr.io/ml/credit-risk@{GOOD}"
    assert live(emulator, CHALLENGER)["spec"]["replicas"] == 1  # left for someone to look at
    assert "the champion is back on its previous image" in out.stderr


def test_rollback_scales_the_challenger_to_zero_and_leaves_the_champion(
        project: Path, cluster, tmp_path: Path) -> None:
    emulator, kubeconfig = deployed(project, cluster, tmp_path, challenger_errors=20)
    before = live(emulator, CHAMPION)["metadata"]["resourceVersion"]
    out = promote(project, kubeconfig, "--apply")
    assert out.returncode == 1, out.stderr
    assert "ROLL BACK: challenger over threshold: error_rate" in out.stdout
    assert live(emulator, CHALLENGER)["spec"]["replicas"] == 0
    assert pods(emulator, CHALLENGER) == []
    assert image(emulator, CHAMPION).endswith(GOOD)
    assert live(emulator, CHAMPION)["metadata"]["resourceVersion"] == before


def test_dry_run_prints_the_plan_and_changes_nothing(project: Path, cluster,
                                                     tmp_path: Path) -> None:
    emulator, kubeconfig = deployed(project, cluster, tmp_path)
    writes = sum(r["method"] == "PATCH" for r in emulator.state.requests)
    out = promote(project, kubeconfig, "--apply", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "PROMOTE" in out.stdout
    assert (f"apply Deployment {NS}/{CHAMPION}: container server image {CHALLENGER_IMAGE}"
            in out.stdout)
    assert f"apply Deployment {NS}/{CHALLENGER}: replicas 0" in out.stdout
    assert sum(r["method"] == "PATCH" for r in emulator.state.requests) == writes
    assert image(emulator, CHAMPION).endswith(GOOD)
    assert live(emulator, CHALLENGER)["spec"]["replicas"] == 1


def test_metrics_source_is_required_once(project: Path, cluster) -> None:
    _, kubeconfig = cluster
    out = mlgen(project, kubeconfig, "promote", "prod")
    assert out.returncode == 2
    assert "--from-cluster" in out.stderr
