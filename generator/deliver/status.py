"""`mlgen status`: what runs in each environment, read from the live objects.

Environments share names and namespace (each is its own cluster or kubeconfig context), so
an environment counts as deployed only when the live Deployment carries its
`mlgen.dev/environment` label; the rest is read from what deploy left: the image digest in
the pod template, `app.kubernetes.io/version` (the model version), the replica counts, the
`mlgen.dev/last-rollout` annotation, and the drift CronJob's status.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ..integrations.kubernetes import Cluster
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

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


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
    return EnvironmentStatus(
        environment, deployed=True, image=image,
        digest=image.partition("@")[2],
        model_version=meta.get("labels", {}).get("app.kubernetes.io/version", ""),
        ready=int(live.get("status", {}).get("readyReplicas", 0)),
        desired=int(live["spec"].get("replicas", 1)),
        last_rollout=str(note.get("result", "")), last_rollout_at=str(note.get("at", "")),
        drift_last_schedule=str(drift_status.get("lastScheduleTime", "")),
        drift_last_success=str(drift_status.get("lastSuccessfulTime", "")))


def table(rows: list[EnvironmentStatus]) -> str:
    header = ("ENV", "DIGEST", "VERSION", "READY", "LAST ROLLOUT", "DRIFT LAST SUCCESS")
    cells = [header] + [
        (r.environment, (r.digest[:19] if r.digest else r.image) or "-", r.model_version or "-",
         f"{r.ready}/{r.desired}", f"{r.last_rollout} {r.last_rollout_at}".strip() or "-",
         r.drift_last_success or "-") if r.deployed
        else (r.environment, "not deployed", "-", "-", "-", "-") for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in cells)
