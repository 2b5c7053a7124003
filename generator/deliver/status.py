"""`mlgen status`: what runs in each environment, read from the live objects.

Environments share names and namespace (each is its own cluster or kubeconfig context), so
an environment counts as deployed only when the live Deployment carries its
`mlgen.dev/environment` label; the rest is read from what deploy left: the image digest in
the pod template, `app.kubernetes.io/version` (the model version), the replica counts, the
`mlgen.dev/last-rollout` annotation, and the drift CronJob's status.

Where the environment's Argo Rollout runs the pods (kubernetes.challenger with engine
argo-rollouts), the Deployment only holds the template and Argo scales it to 0: the replica
counts come from the Rollout, and `rollout` adds its phase, step, canary weight, pod hashes
and the images its stable and canary pods run.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ..integrations.kubernetes import Cluster
from . import argo, argo_deploy
from .rollout import LAST_ROLLOUT

ENV_LABEL = "mlgen.dev/environment"


@dataclass(frozen=True)
class EnvironmentStatus:
    environment: str
    deployed: bool
    image: str = ""
    digest: str = ""
    model_version: str = ""
    ready: int = 0
    desired: int = 0
    last_rollout: str = ""
    last_rollout_at: str = ""
    drift_last_schedule: str = ""
    drift_last_success: str = ""
    rollout: dict[str, Any] | None = None  # the Argo Rollout's, in its environments

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "rollout" or v is not None}


def _server_image(pods: list[dict[str, Any]]) -> str:
    for pod in pods:
        containers = pod.get("spec", {}).get("containers", [])
        return str(next((c["image"] for c in containers if c.get("name") == "server"),
                        containers[0]["image"] if containers else ""))
    return ""


def rollout_status(cluster: Cluster, environment: str, namespace: str,
                   name: str) -> dict[str, Any] | None:
    live = cluster.get(argo.API_VERSION, argo.KIND, namespace, name)
    if live is None or live["metadata"].get("labels", {}).get(ENV_LABEL) != environment:
        return None
    row = argo_deploy.summary(live)
    del row["state"]
    stable_image = _server_image(argo_deploy.revision_pods(cluster, live, row["stable"])) \
        if row["stable"] else ""
    canary = row["current"] != row["stable"]
    canary_image = _server_image(argo_deploy.revision_pods(cluster, live, row["current"])) \
        if canary and row["current"] else ""
    row.update(stable_image=stable_image, stable_digest=stable_image.partition("@")[2],
               canary_image=canary_image, canary_digest=canary_image.partition("@")[2],
               aborted=bool((live.get("status") or {}).get("abort")))
    return row


def environment_status(cluster: Cluster, environment: str, namespace: str,
                       name: str) -> EnvironmentStatus:
    live = cluster.get("apps/v1", "Deployment", namespace, name)
    if live is None or live["metadata"].get("labels", {}).get(ENV_LABEL) != environment:
        return EnvironmentStatus(environment, deployed=False)
    meta = live["metadata"]
    containers = live["spec"]["template"]["spec"].get("containers", [])
    image = next((c["image"] for c in containers if c.get("name") == "server"),
                 containers[0]["image"] if containers else "")
    try:
        note = json.loads(meta.get("annotations", {}).get(LAST_ROLLOUT, "{}"))
    except ValueError:
        note = {}
    drift = cluster.get("batch/v1", "CronJob", namespace, f"{name}-drift") or {}
    drift_status = drift.get("status", {})
    rollout = rollout_status(cluster, environment, namespace, name)
    ready = int(live.get("status", {}).get("readyReplicas", 0))
    desired = int(live["spec"].get("replicas", 1))
    if rollout is not None:  # Argo runs the pods; the Deployment is scaled to 0
        ready, desired = rollout["ready"], rollout["desired"]
    return EnvironmentStatus(
        environment, deployed=True, image=image,
        digest=image.partition("@")[2],
        model_version=meta.get("labels", {}).get("app.kubernetes.io/version", ""),
        ready=ready, desired=desired, rollout=rollout,
        last_rollout=str(note.get("result", "")), last_rollout_at=str(note.get("at", "")),
        drift_last_schedule=str(drift_status.get("lastScheduleTime", "")),
        drift_last_success=str(drift_status.get("lastSuccessfulTime", "")))


def _rollout_cells(r: EnvironmentStatus) -> tuple[str, str]:
    if not r.rollout:
        return "-", "-"
    o = r.rollout
    where = f", step {o['step']}/{o['steps']}, canary {o['weight']}%" \
        if o["current"] != o["stable"] else ""
    images = f"stable {o['stable_image'] or '-'}" + \
        (f", canary {o['canary_image'] or '-'}" if o["current"] != o["stable"] else "")
    return f"{o['phase'] or '-'}{where}", images


def table(rows: list[EnvironmentStatus]) -> str:
    header: tuple[str, ...] = ("ENV", "DIGEST", "VERSION", "READY", "LAST ROLLOUT",
                               "DRIFT LAST SUCCESS")
    cells: list[tuple[str, ...]] = [header] + [
        (r.environment, (r.digest[:19] if r.digest else r.image) or "-", r.model_version or "-",
         f"{r.ready}/{r.desired}", f"{r.last_rollout} {r.last_rollout_at}".strip() or "-",
         r.drift_last_success or "-") if r.deployed
        else (r.environment, "not deployed", "-", "-", "-", "-") for r in rows]
    if any(r.rollout for r in rows):  # Argo Rollouts columns only where there is one
        cells[0] += ("ROLLOUT", "IMAGES")
        for i, r in enumerate(rows, start=1):
            cells[i] += _rollout_cells(r)
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in cells)
