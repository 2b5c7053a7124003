"""`mlgen deploy` and `mlgen status` in an environment whose overlay has an Argo Rollout (the
card-fraud example's prod), through the real `kubernetes` client against the emulator, which
plays the Argo Rollouts controller (tests/emulators/argo_rollouts.py): deploy waits for the
Rollout, not for the Deployment it only borrows the pod template from."""
from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from tests.deliver import test_promote_argo
from tests.deliver.conftest import TOKEN, mlgen
from tests.deliver.test_promote_argo import (
    CANARY_IMAGE,
    GOOD,
    NAME,
    NS,
    STABLE_IMAGE,
    render_with,
    rollout,
    rollout_pods,
)
from tests.emulators.kubernetes import Broken, KubernetesEmulator

project = test_promote_argo.project  # the card-fraud project, fixed replicas (a fixture)


def deploy(project: Path, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return mlgen(project, kubeconfig, "deploy", "prod", "--digest", GOOD, "--poll-interval",
                 "0.1", "--json", *args)


def first_deploy(project: Path, kubeconfig: Path) -> None:
    out = deploy(project, kubeconfig)
    assert out.returncode == 0, out.stderr


def test_first_deploy_waits_for_the_rollout_to_be_healthy(
        project: Path, cluster: tuple[KubernetesEmulator, Path]) -> None:
    emulator, kubeconfig = cluster
    out = deploy(project, kubeconfig)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["result"] == "succeeded"
    assert doc["rollout"]["phase"] == "Healthy" and doc["rollout"]["state"] == "healthy"
    assert doc["rollout"]["ready"] == doc["rollout"]["desired"] == 4
    status = rollout(emulator)["status"]
    assert doc["revision"] == status["stableRS"] == status["currentPodHash"]
    assert f"Rollout payments-fraud/{NAME}: " in out.stderr  # the progress line
    assert rollout_pods(emulator) == {"champion": [STABLE_IMAGE] * 4}
    # Argo scaled the template holder to 0 (scaleDown: onsuccess): its rollout says nothing.
    deployment = emulator.state.objects[("apps/v1", "deployments", NS, NAME)]
    assert deployment["spec"]["replicas"] == 0
    assert "argo-rollouts" in {m["manager"] for m in deployment["metadata"]["managedFields"]}
    out = mlgen(project, kubeconfig, "status", "prod", "--json")
    [row] = json.loads(out.stdout)
    assert (row["ready"], row["desired"]) == (4, 4)  # the Rollout's, not the Deployment's 0


def test_a_new_challenger_waits_until_the_canary_is_paused(
        project: Path, cluster: tuple[KubernetesEmulator, Path]) -> None:
    emulator, kubeconfig = cluster
    first_deploy(project, kubeconfig)
    render_with(project, "2.2.0-rc1")
    out = deploy(project, kubeconfig)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["result"] == "succeeded"
    assert doc["rollout"]["phase"] == "Paused" and doc["rollout"]["state"] == "canary-paused"
    assert (doc["rollout"]["step"], doc["rollout"]["steps"], doc["rollout"]["weight"]) == \
        (1, 2, 25)
    assert "paused at its canary step" in out.stderr
    assert "Paused, step 1/2, canary weight 25%" in out.stderr  # the progress line
    status = rollout(emulator)["status"]
    assert [c["reason"] for c in status["pauseConditions"]] == ["CanaryPauseStep"]
    assert rollout_pods(emulator) == {"challenger": [CANARY_IMAGE],
                                      "champion": [STABLE_IMAGE] * 3}
    text = mlgen(project, Path(kubeconfig), "deploy", "prod", "--digest", GOOD,
                 "--poll-interval", "0.1")
    assert text.returncode == 0, text.stderr
    assert "paused at its canary step, canary 25%; `mlgen promote prod` decides" in text.stdout


@pytest.mark.parametrize("how", ["argo-deadline", "our-timeout"])
def test_a_broken_challenger_is_aborted(project: Path, cluster: tuple[KubernetesEmulator, Path],
                                        how: str) -> None:
    emulator, kubeconfig = cluster
    first_deploy(project, kubeconfig)
    emulator.state.broken.append(Broken("2.2.0-rc1", "never-ready"))
    args: tuple[str, ...] = ("--timeout", "3")
    if how == "argo-deadline":
        emulator.state.progress_deadline_seconds = 1.0
        args = ("--timeout", "60")
    render_with(project, "2.2.0-rc1")
    out = deploy(project, kubeconfig, *args)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["result"] == "rolled-back"
    if how == "argo-deadline":
        assert doc["reason"].startswith("ProgressDeadlineExceeded")
    else:
        assert doc["reason"].startswith("timed out after 3 s waiting for the Rollout")
    assert "RuntimeError: model artifact failed to load" in doc["reason"]  # the canary's log
    assert "Readiness probe failed" in doc["reason"]  # and its events
    assert doc["rollout"]["state"] == "aborted"
    assert "aborting Rollout payments-fraud/card-fraud" in out.stderr
    status = rollout(emulator)["status"]
    assert status["abort"] is True and status["phase"] == "Degraded"
    assert doc["previous_revision"] == status["stableRS"] != status["currentPodHash"]
    assert rollout_pods(emulator) == {"champion": [STABLE_IMAGE] * 4}
    patches = [r for r in emulator.state.requests if r["method"] == "PATCH"
               and r["path"].endswith(f"/rollouts/{NAME}/status")]
    assert [r["content_type"] for r in patches] == ["application/merge-patch+json"]
    again = json.loads(deploy(project, kubeconfig, *args).stdout)  # the same broken canary
    assert again["result"] == "failed" and "aborted already" in again["reason"]


def test_a_first_deploy_that_never_gets_ready_fails_without_an_abort(
        project: Path, cluster: tuple[KubernetesEmulator, Path]) -> None:
    emulator, kubeconfig = cluster
    emulator.state.broken.append(Broken("2.1.0", "crash-loop"))
    out = deploy(project, kubeconfig, "--timeout", "2")
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["result"] == "failed" and "no stable revision to abort to" in doc["reason"]
    assert "abort" not in rollout(emulator)["status"]


def test_status_reports_the_rollout(project: Path,
                                    cluster: tuple[KubernetesEmulator, Path]) -> None:
    _, kubeconfig = cluster
    first_deploy(project, kubeconfig)
    [row] = json.loads(mlgen(project, kubeconfig, "status", "prod", "--json").stdout)
    assert row["rollout"]["phase"] == "Healthy"
    assert row["rollout"]["stable_image"] == STABLE_IMAGE and row["rollout"]["canary_image"] == ""
    render_with(project, "2.2.0-rc1")
    assert deploy(project, kubeconfig).returncode == 0
    out = mlgen(project, kubeconfig, "status", "--json")
    assert out.returncode == 0, out.stderr
    staging, prod = json.loads(out.stdout)
    assert staging == {**staging, "environment": "staging", "deployed": False}
    assert "rollout" not in staging
    assert prod["deployed"] and prod["last_rollout"] == "succeeded"
    assert (prod["ready"], prod["desired"]) == (4, 4)  # the Rollout's pods, not the Deployment's
    r = prod["rollout"]
    assert (r["phase"], r["step"], r["steps"], r["weight"]) == ("Paused", 1, 2, 25)
    assert (r["stable_image"], r["canary_image"]) == (STABLE_IMAGE, CANARY_IMAGE)
    assert r["stable"] != r["current"] and not r["aborted"]
    table = mlgen(project, kubeconfig, "status")
    assert table.returncode == 0, table.stderr
    header, staging_line, prod_line = table.stdout.splitlines()
    assert header.split()[-2:] == ["ROLLOUT", "IMAGES"]
    assert "Paused, step 1/2, canary 25%" in prod_line
    assert f"stable {STABLE_IMAGE}, canary {CANARY_IMAGE}" in prod_line
    assert "not deployed" in staging_line


def test_token_never_logged_while_waiting_for_the_rollout(
        project: Path, cluster: tuple[KubernetesEmulator, Path],
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgen.cli import main

    _, kubeconfig = cluster
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    caplog.set_level(logging.DEBUG)
    code = main(["-C", str(project), "deploy", "prod", "--digest", GOOD, "--poll-interval",
                 "0.1"])
    assert code == 0
    assert main(["-C", str(project), "status", "prod"]) == 0
    captured = capsys.readouterr()
    assert "/rollouts/card-fraud" in caplog.text  # the Rollout's requests were logged
    assert TOKEN not in caplog.text + captured.out + captured.err
