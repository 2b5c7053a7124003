"""`mlgen deploy` as one call: build the pinned overlay, then dry-run, diff, or roll it out."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from ..integrations.kubectl import Kubectl
from ..integrations.kubernetes import Cluster, describe
from ..textdiff import diff_text
from . import argo, argo_deploy
from .rollout import MANAGER, Result, Rollout
from .target import Target, manifest_objects, render_pinned

# What the server fills in and a diff should not show.
NOISE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")


def pinned_objects(target: Target, kube_context: str | None) -> list[dict[str, Any]]:
    return manifest_objects(render_pinned(Kubectl(context=kube_context), target))


def _comparable(obj: dict[str, Any] | None) -> str:
    if not obj:
        return ""
    clean = {k: v for k, v in obj.items() if k != "status"}
    clean["metadata"] = {k: v for k, v in obj.get("metadata", {}).items() if k not in NOISE}
    return yaml.safe_dump(clean, sort_keys=True)


def server_dry_run(cluster: Cluster, objects: list[dict[str, Any]], result: Result,
                   force: bool, diff: bool, echo: Callable[[str], None]) -> Result:
    """Apply with dryRun=All: the server validates and merges, nothing is stored. With diff,
    print what would change against the live objects."""
    result.result = "dry-run"
    for obj in objects:
        meta = obj["metadata"]
        live = cluster.get(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        after = cluster.apply(obj, MANAGER, force=force, dry_run=True)
        before_text, after_text = _comparable(live), _comparable(after)
        action = "created" if live is None else \
            ("unchanged" if before_text == after_text else "configured")
        result.objects.append({"kind": obj["kind"], "name": meta["name"], "action": action})
        if diff and action != "unchanged":
            name = describe(obj)
            echo(diff_text(before_text, after_text, f"live/{name}", f"applied/{name}").rstrip())
        elif not diff:
            echo(f"{describe(obj)} {action} (server dry run)")
    return result


def smoke_test(cluster: Cluster, target: Target, rollout: Rollout) -> list[str]:
    """GET the ready paths on one new pod through the API server's pod proxy."""
    deployment = cluster.get("apps/v1", "Deployment", target.namespace, target.deployment)
    pods = rollout.new_pods(deployment or {})
    if not pods:
        return ["no pod to smoke-test"]
    name = pods[0]["metadata"]["name"]
    for path in (target.ready_path, target.model_ready_path):
        cluster.pod_proxy_get(target.namespace, name, target.port, path)
    return []


def argo_smoke_test(cluster: Cluster, target: Target) -> None:
    """The same GETs on one pod of the Rollout's current revision (the canary, when paused)."""
    live = argo.live(cluster, argo.Canary(target.namespace, target.deployment))
    current = str((live.get("status") or {}).get("currentPodHash", ""))
    pods = argo_deploy.revision_pods(cluster, live, current)
    if pods:
        for path in (target.ready_path, target.model_ready_path):
            cluster.pod_proxy_get(target.namespace, pods[0]["metadata"]["name"], target.port,
                                  path)


def deploy(target: Target, cluster: Cluster, objects: list[dict[str, Any]], *, timeout: float,
           force: bool, dry_run: bool, diff: bool, smoke: bool, poll: float,
           echo: Callable[[str], None]) -> Result:
    result = Result(environment=target.environment, deployment=target.deployment,
                    namespace=target.namespace, image=f"{target.pinned_image}@{target.digest}")
    if dry_run or diff:
        return server_dry_run(cluster, objects, result, force, diff, echo)
    if argo_deploy.find_rollout(objects, target.deployment) is not None:
        result = argo_deploy.deploy_rollout(cluster, objects, result, timeout, force, poll, echo)
        if smoke and result.result == "succeeded":
            argo_smoke_test(cluster, target)
            echo(f"smoke test passed: {target.ready_path} and {target.model_ready_path} "
                 "answer 200")
        return result
    rollout = Rollout(cluster, echo, poll=poll)
    result = rollout.run(objects, result, timeout, force)
    if smoke and result.result == "succeeded":
        smoke_test(cluster, target, rollout)
        echo(f"smoke test passed: {target.ready_path} and {target.model_ready_path} answer 200")
    return result


def default_timeout(objects: list[dict[str, Any]], deployment: str) -> float:
    """The Deployment's own progressDeadlineSeconds when the manifests set one, else 300 s;
    with an Argo Rollout, Argo's deadline and a margin."""
    rollout = argo_deploy.find_rollout(objects, deployment)
    if rollout is not None:
        return argo_deploy.default_timeout(rollout)
    for obj in objects:
        if obj.get("kind") == "Deployment" and obj["metadata"]["name"] == deployment:
            return float(obj.get("spec", {}).get("progressDeadlineSeconds", 300))
    return 300.0
