"""`mlgen deploy` / `mlgen status` through the real `kubernetes` client against the emulator.

The emulator (tests/emulators/kubernetes.py) checks every object it stores or answers against
the Kubernetes JSON schemas; each test ends by asserting it found nothing wrong.
"""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.deliver.conftest import TOKEN, mlgen
from tests.emulators.kubernetes import (
    Broken,
    Fault,
    KubernetesEmulator,
)
from tests.helpers import run_mlgen

GOOD = "sha256:" + "ab" * 32
BROKEN = "sha256:" + "cd" * 32
NEWER = "sha256:" + "ef" * 32


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (it builds the overlays)")
    root = tmp_path_factory.mktemp("k8s") / "credit-risk"
    out = run_mlgen("init", str(root), "--name", "credit-risk", "--registry",
                    "registry.bank.internal", "--non-interactive", timeout=120)
    assert out.returncode == 0, out.stderr
    return root


def deploy(project: Path, kubeconfig: Path, digest: str, *args: str
           ) -> subprocess.CompletedProcess[str]:
    return mlgen(project, kubeconfig, "deploy", "dev", "--digest", digest, "--poll-interval",
                 "0.1", *args)


def deployment(emulator: KubernetesEmulator) -> dict:
    return emulator.state.objects[("apps/v1", "deployments", "credit-risk", "credit-risk")]


def image_of(emulator: KubernetesEmulator) -> str:
    return deployment(emulator)["spec"]["template"]["spec"]["containers"][0]["image"]


def stored(emulator: KubernetesEmulator) -> dict[str, tuple[str, str]]:
    """What was written: each object's resourceVersion and spec (status moves with time)."""
    return {"/".join(k): (v["metadata"]["resourceVersion"], json.dumps(v.get("spec")))
            for k, v in emulator.state.objects.items()}


def test_rollout_succeeds_with_server_side_apply_as_mlgen(project: Path, cluster) -> None:
    emulator, kubeconfig = cluster
    out = deploy(project, kubeconfig, GOOD, "--json", "--smoke-test")
    assert out.returncode == 0, out.stderr
    assert "smoke test passed" in out.stderr
    assert any("/proxy/v2/models/credit-risk/ready" in r["path"] for r in emulator.state.requests)
    result = json.loads(out.stdout)
    assert result["result"] == "succeeded" and result["revision"] == "1"
    assert image_of(emulator) == f"registry.bank.internal/credit-risk@{GOOD}"
    assert "rollout credit-risk: 1/1 updated, 1/1 available" in out.stderr
    managers = {m["manager"]: m["operation"] for m in deployment(emulator)["metadata"]
                ["managedFields"]}
    assert managers == {"mlgen": "Apply", "mlgen-status": "Apply"}
    patches = [r for r in emulator.state.requests if r["method"] == "PATCH"]
    assert {r["content_type"] for r in patches} == {"application/apply-patch+yaml"}
    assert all(r["query"]["fieldManager"].startswith("mlgen") for r in patches)
    kinds = {k[1] for k in emulator.state.objects}
    assert {"configmaps", "services", "cronjobs", "horizontalpodautoscalers"} <= kinds


def test_broken_image_rolls_back_by_itself(project: Path, cluster) -> None:
    """The issue's done-criterion, end to end through the CLI."""
    emulator, kubeconfig = cluster
    assert deploy(project, kubeconfig, GOOD).returncode == 0
    emulator.state.broken.append(Broken(BROKEN, "crash-loop",
                                        ("Traceback (most recent call last):",
                                         "ValueError: model.joblib was pickled by sklearn 9")))
    out = deploy(project, kubeconfig, BROKEN, "--timeout", "30")
    assert out.returncode == 1, out.stderr
    assert "CrashLoopBackOff" in out.stderr
    assert "BackOff: Back-off restarting failed container" in out.stderr
    assert "ValueError: model.joblib was pickled by sklearn 9" in out.stderr
    assert "rolled-back (back on revision 1)" in out.stderr
    assert image_of(emulator) == f"registry.bank.internal/credit-risk@{GOOD}"
    live = deployment(emulator)
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert live["status"]["availableReplicas"] == 1
    note = json.loads(live["metadata"]["annotations"]["mlgen.dev/last-rollout"])
    assert note["result"] == "rolled-back"


def test_never_ready_pod_times_out_and_rolls_back(project: Path, cluster) -> None:
    emulator, kubeconfig = cluster
    assert deploy(project, kubeconfig, GOOD).returncode == 0
    emulator.state.broken.append(Broken(NEWER, "never-ready", ("model failed to load",)))
    out = deploy(project, kubeconfig, NEWER, "--timeout", "2")
    assert out.returncode == 1
    assert "timed out after 2 s" in out.stderr
    assert "Unhealthy: Readiness probe failed" in out.stderr
    assert "model failed to load" in out.stderr
    assert image_of(emulator).endswith(GOOD)


def test_progress_deadline_exceeded_rolls_back(project: Path, cluster) -> None:
    emulator, kubeconfig = cluster
    assert deploy(project, kubeconfig, GOOD).returncode == 0
    emulator.state.broken.append(Broken(NEWER, "never-ready"))
    emulator.state.progress_deadline_seconds = 1
    out = deploy(project, kubeconfig, NEWER, "--timeout", "60")
    assert out.returncode == 1
    assert "ProgressDeadlineExceeded" in out.stderr
    assert image_of(emulator).endswith(GOOD)


def test_first_deploy_that_fails_has_nothing_to_roll_back_to(project: Path, cluster) -> None:
    emulator, kubeconfig = cluster
    emulator.state.broken.append(Broken(BROKEN, "crash-loop"))
    out = deploy(project, kubeconfig, BROKEN, "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)["result"] == "failed"
    assert "no previous revision" in json.loads(out.stdout)["reason"]


def test_server_dry_run_changes_nothing_and_diff_shows_the_image(project: Path, cluster
                                                                 ) -> None:
    emulator, kubeconfig = cluster
    assert deploy(project, kubeconfig, GOOD).returncode == 0
    before = stored(emulator)
    out = deploy(project, kubeconfig, NEWER, "--dry-run=server", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["result"] == "dry-run"
    out = deploy(project, kubeconfig, NEWER, "--diff")
    assert out.returncode == 0, out.stderr
    assert f"-        image: registry.bank.internal/credit-risk@{GOOD}" in out.stdout
    assert f"+        image: registry.bank.internal/credit-risk@{NEWER}" in out.stdout
    after = stored(emulator)
    assert after == before
    dry = [r for r in emulator.state.requests if r["method"] == "PATCH"][-1]
    assert dry["query"]["dryRun"] == "All"


def test_500_and_409_are_retried(project: Path, cluster) -> None:
    emulator, kubeconfig = cluster
    emulator.state.faults += [Fault(status=500, count=2, method="PATCH", path="deployments"),
                              Fault(status=409, count=1, method="PATCH", path="services")]
    out = deploy(project, kubeconfig, GOOD)
    assert out.returncode == 0, out.stderr


def test_persistent_500_ends_in_an_error_naming_the_object(project: Path, cluster) -> None:
    emulator, kubeconfig = cluster
    emulator.state.faults.append(Fault(status=500, count=100, method="PATCH",
                                       path="deployments"))
    out = deploy(project, kubeconfig, GOOD)
    assert out.returncode == 1
    assert "applying Deployment credit-risk/credit-risk (gave up after 5 attempts)" in out.stderr
    assert "etcdserver: request timed out" in out.stderr


def test_slow_answers_time_out_and_are_retried(project: Path, cluster) -> None:
    emulator, kubeconfig = cluster
    emulator.state.faults.append(Fault(delay=1.5, count=2, method="PATCH", path="configmaps"))
    out = deploy(project, kubeconfig, GOOD, "--request-timeout", "0.5")
    assert out.returncode == 0, out.stderr


def test_field_conflict_needs_force(project: Path, cluster) -> None:
    emulator, kubeconfig = cluster
    assert deploy(project, kubeconfig, GOOD).returncode == 0
    request = urllib.request.Request(
        f"{emulator.url}/apis/apps/v1/namespaces/credit-risk/deployments/credit-risk"
        "?fieldManager=kubectl-edit", method="PATCH",
        data=json.dumps({"spec": {"revisionHistoryLimit": 2}}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}",
                 "Content-Type": "application/merge-patch+json"})
    urllib.request.urlopen(request).read()
    out = deploy(project, kubeconfig, NEWER)
    assert out.returncode == 1
    assert 'conflict with "kubectl-edit": .spec.revisionHistoryLimit' in out.stderr
    assert "--force-conflicts" in out.stderr
    assert deploy(project, kubeconfig, NEWER, "--force-conflicts").returncode == 0


def test_token_never_logged(project: Path, cluster, caplog: pytest.LogCaptureFixture,
                            capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    from mlgen.cli import main

    emulator, kubeconfig = cluster
    emulator.state.faults.append(Fault(status=500, count=1, method="PATCH", path="deployments"))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    caplog.set_level(logging.DEBUG)  # every logger: ours, kubernetes', urllib3's
    code = main(["-C", str(project), "deploy", "dev", "--digest", GOOD, "--poll-interval", "0.1"])
    assert code == 0
    captured = capsys.readouterr()
    logged = caplog.text
    assert "mlgen.kubernetes" in {r.name for r in caplog.records}
    assert TOKEN not in logged + captured.out + captured.err


def test_status_after_deploy_and_after_rollback(project: Path, cluster) -> None:
    emulator, kubeconfig = cluster
    assert deploy(project, kubeconfig, GOOD).returncode == 0
    out = mlgen(project, kubeconfig, "status", "dev", "--json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert row["digest"] == GOOD and row["last_rollout"] == "succeeded"
    assert row["ready"] == 1 and row["desired"] == 1 and row["model_version"]
    emulator.state.broken.append(Broken(BROKEN, "crash-loop"))
    assert deploy(project, kubeconfig, BROKEN).returncode == 1
    [row] = json.loads(mlgen(project, kubeconfig, "status", "dev", "--json").stdout)
    assert row["digest"] == GOOD and row["last_rollout"] == "rolled-back"
    table = mlgen(project, kubeconfig, "status")
    assert table.returncode == 0, table.stderr
    assert "rolled-back" in table.stdout and "not deployed" in table.stdout


def test_emulator_runs_on_its_own(tmp_path: Path) -> None:
    import socket
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators.kubernetes", "--port",
                             str(port), "--token", TOKEN], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "Kubernetes API emulator on" in proc.stdout.readline()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/apis/apps/v1/namespaces/ns/deployments",
            headers={"Authorization": f"Bearer {TOKEN}"})
        for _ in range(50):  # the first line is printed before serve_forever starts
            try:
                listing = json.loads(urllib.request.urlopen(request).read())
                break
            except OSError:
                time.sleep(0.1)
        assert listing["kind"] == "DeploymentList" and listing["items"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_status_reports_the_drift_cronjobs_last_runs(project: Path, cluster) -> None:
    emulator, kubeconfig = cluster
    assert deploy(project, kubeconfig, GOOD).returncode == 0
    [key] = [k for k in emulator.state.objects
             if k[1] == "cronjobs" and k[3].endswith("-drift")]
    # What the CronJob controller writes after runs; the emulator has no controller.
    emulator.state.objects[key]["status"] = {"lastScheduleTime": "2026-12-01T06:30:00Z",
                                             "lastSuccessfulTime": "2026-12-01T06:31:12Z"}
    [row] = json.loads(mlgen(project, kubeconfig, "status", "dev", "--json").stdout)
    assert row["drift_last_schedule"] == "2026-12-01T06:30:00Z"
    assert row["drift_last_success"] == "2026-12-01T06:31:12Z"
    table = mlgen(project, kubeconfig, "status", "dev")
    assert table.returncode == 0, table.stderr
    assert "DRIFT LAST SUCCESS" in table.stdout and "2026-12-01T06:31:12Z" in table.stdout
