"""Carry out `mlgen promote`'s decision on an Argo Rollouts canary (kubernetes.challenger with
engine argo-rollouts), through the `kubernetes` client.

The writes are those of the Argo Rollouts kubectl plugin
(pkg/kubectl-argo-rollouts/cmd/promote and cmd/abort), JSON merge patches:

- promote = `kubectl argo rollouts promote NAME`: `{"status": {"pauseConditions": null}}` on the
  Rollout's status subresource (Argo then moves past the indefinite pause to 100% and makes
  the canary stable), and `{"spec": {"paused": false}}` when someone paused the Rollout by
  hand. Then promote waits for Argo: `status.phase` Healthy with `stableRS` equal to
  `currentPodHash`; Degraded (the canary's pods never became ready at 100%, say) or the
  deadline is a failed promotion, exit 1, and Argo keeps what it has.
- roll back = `kubectl argo rollouts abort NAME`: `{"status": {"abort": true}}`. Argo scales
  the canary down and sends every request to the stable revision.

Merge patches, not server-side apply: the status belongs to the Argo controller, and the
plugin's patches are what Argo expects to see. `--from-cluster` reads the Rollout's ready pods
by the `mlgen.dev/track` label its canaryMetadata/stableMetadata put on the two revisions.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import MlgenError
from ..integrations.kubernetes import Cluster, KubernetesApiError
from .canary import Step

API_VERSION = "argoproj.io/v1alpha1"
KIND = "Rollout"
PAUSE_REASON = "CanaryPauseStep"
TRACK = "mlgen.dev/track"
UNPAUSE = {"spec": {"paused": False}}
CLEAR_PAUSE = {"status": {"pauseConditions": None}}
ABORT = {"status": {"abort": True}}


@dataclass(frozen=True)
class Canary:
    namespace: str
    name: str  # the Rollout's, the same as the Deployment it references

    def describe(self) -> str:
        return f"Rollout {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Outcome:
    result: str  # succeeded, failed, timed-out
    reason: str
    phase: str
    seconds: float

    def as_json(self) -> dict[str, object]:
        return {"result": self.result, "reason": self.reason, "phase": self.phase,
                "seconds": round(self.seconds, 1)}


def plan(canary: Canary, promote: bool) -> list[Step]:
    what = canary.describe()
    if promote:
        return [
            Step("what `kubectl argo rollouts promote` does: Argo leaves the pause step and "
                 "takes the challenger to 100%",
                 f"patch {what} status: pauseConditions null (merge patch; spec.paused false "
                 "when paused by hand)"),
            Step("the challenger is the stable revision",
                 f"wait for {what}: phase Healthy, stableRS = currentPodHash"),
        ]
    return [Step("what `kubectl argo rollouts abort` does: Argo scales the canary to 0, the "
                 "stable revision serves everything",
                 f"patch {what} status: abort true (merge patch)")]


def live(cluster: Cluster, canary: Canary) -> dict[str, Any]:
    found = cluster.get(API_VERSION, KIND, canary.namespace, canary.name)
    if found is None:
        raise MlgenError(f"{canary.describe()} does not exist: deploy the environment (its "
                         "overlay has the Rollout) and change kubernetes.challenger.image_tag "
                         "to start a canary")
    return found


def paused_canary(rollout: dict[str, Any], canary: Canary) -> None:
    """Refuse (exit 2) a Rollout that is not paused at its canary step."""
    from ..promote import PromoteInputError

    status = rollout.get("status") or {}
    reasons = [c.get("reason") for c in status.get("pauseConditions") or []]
    if status.get("abort"):
        raise PromoteInputError(f"{canary.describe()} was aborted: change "
                                "kubernetes.challenger.image_tag to start a new canary")
    if not status.get("stableRS") or status.get("stableRS") == status.get("currentPodHash"):
        raise PromoteInputError(f"{canary.describe()} runs one revision (phase "
                                f"{status.get('phase', 'unknown')}): no canary to decide on")
    if PAUSE_REASON not in reasons:
        raise PromoteInputError(f"{canary.describe()} is not paused at its canary step "
                                f"(phase {status.get('phase', 'unknown')}, pause conditions: "
                                f"{', '.join(map(str, reasons)) or 'none'}): wait for it")


def _patch_status(cluster: Cluster, canary: Canary, patch: dict[str, Any]) -> None:
    try:
        cluster.merge_patch(API_VERSION, KIND, canary.namespace, canary.name, patch, "status")
    except KubernetesApiError as exc:
        if exc.status != 404:
            raise
        # Argo Rollouts CRDs before v1.0 had no status subresource: the plugin then patches
        # the object itself, and so do we.
        cluster.merge_patch(API_VERSION, KIND, canary.namespace, canary.name, patch)


def promote(cluster: Cluster, canary: Canary, *, timeout: float, poll: float,
            echo: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> Outcome:
    rollout = live(cluster, canary)
    paused_canary(rollout, canary)
    _patch_status(cluster, canary, CLEAR_PAUSE)  # the plugin's order: status, then spec
    if rollout["spec"].get("paused"):
        cluster.merge_patch(API_VERSION, KIND, canary.namespace, canary.name, UNPAUSE)
    echo(f"promoted {canary.describe()}: waiting for Argo Rollouts to make the challenger "
         "stable")
    start = clock()
    last = ""
    while True:
        status = live(cluster, canary).get("status") or {}
        phase = str(status.get("phase", ""))
        line = f"{canary.describe()}: {phase or 'no phase'}, {status.get('readyReplicas', 0)}/" \
               f"{status.get('replicas', 0)} ready"
        if line != last:
            echo(line)
            last = line
        if phase == "Healthy" and status.get("stableRS") == status.get("currentPodHash"):
            return Outcome("succeeded", "the challenger is the stable revision", phase,
                           clock() - start)
        if phase == "Degraded":
            return Outcome("failed", str(status.get("message", "Degraded")), phase,
                           clock() - start)
        if clock() - start > timeout:
            return Outcome("timed-out", f"not Healthy within {timeout:g} s: "
                           f"{status.get('message', phase)}", phase, clock() - start)
        sleep(poll)


def abort(cluster: Cluster, canary: Canary, echo: Callable[[str], None]) -> None:
    paused_canary(live(cluster, canary), canary)
    _patch_status(cluster, canary, ABORT)
    echo(f"aborted {canary.describe()}: Argo Rollouts scales the challenger to 0")


def cluster_metrics(cluster: Cluster, canary: Canary, track: str, port: int, path: str) -> str:
    """The /metrics of the Rollout's ready pods of one track (champion: the stable revision,
    challenger: the canary), read through the pod proxy."""
    from ..promote import PromoteInputError

    rollout = live(cluster, canary)
    selector = {**(rollout["spec"].get("selector") or {}).get("matchLabels", {}), TRACK: track}
    labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    pods = [p for p in cluster.list("v1", "Pod", canary.namespace, labels=labels)
            if any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in p.get("status", {}).get("conditions", []))]
    if not pods:
        raise PromoteInputError(f"{canary.describe()} has no ready {track} pod ({labels}) to "
                                f"read {path} from")
    return "\n".join(cluster.pod_proxy_get(canary.namespace, p["metadata"]["name"], port, path)
                     for p in pods)
