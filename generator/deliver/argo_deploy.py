"""`mlgen deploy` and `mlgen status` for an environment whose overlay has an Argo Rollouts
`Rollout` (kubernetes.challenger with engine argo-rollouts).

There the Deployment only holds the pod template (`workloadRef`); Argo runs the pods and
scales the Deployment to 0, so its rollout says nothing. Deploy waits for the Rollout instead:

- `status.workloadObservedGeneration` caught up with the Deployment's generation (Argo has
  seen the template just applied);
- done when `phase` is Healthy with `stableRS` = `currentPodHash` and the replicas ready (one
  revision: a first deploy, or the same template again), or when it is Paused with a
  `CanaryPauseStep` pause condition and the canary's pods are Ready (a new challenger: the
  canary is up and waits for `mlgen promote`);
- Degraded (Argo's progress deadline) or our deadline is a failure: the reason quotes the
  Rollout's message and conditions and the failing canary pods' events and last log lines (the
  Deployment path's diagnosis), then the canary is aborted as `mlgen promote`'s roll back does
  it (`kubectl argo rollouts abort`), and deploy exits 1.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..integrations.kubernetes import Cluster, describe
from .argo import ABORT, API_VERSION, KIND, PAUSE_REASON, Canary, _patch_status
from .rollout import MANAGER, Result, Rollout

HASH_LABEL = "rollouts-pod-template-hash"


def find_rollout(objects: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o.get("apiVersion") == API_VERSION
                 and o.get("kind") == KIND and o["metadata"]["name"] == name), None)


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


def revision_pods(cluster: Cluster, rollout: dict[str, Any], pod_hash: str) -> list[dict[str, Any]]:
    """The pods of one revision of the Rollout, by Argo's pod-template-hash label."""
    match = {**(rollout["spec"].get("selector") or {}).get("matchLabels", {}),
             HASH_LABEL: pod_hash}
    labels = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
    return cluster.list("v1", "Pod", rollout["metadata"]["namespace"], labels=labels)


def steps_of(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    return list((((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {})
                .get("steps") or [])


def weight(rollout: dict[str, Any]) -> int:
    """The canary's share: the last setWeight before the current step (100 past the steps, 0
    with one revision)."""
    status = rollout.get("status") or {}
    if not status.get("stableRS") or status.get("stableRS") == status.get("currentPodHash"):
        return 0
    steps = steps_of(rollout)
    index = int(status.get("currentStepIndex", 0))
    if index >= len(steps):
        return 100
    weights = [int(s["setWeight"]) for s in steps[:index + 1] if "setWeight" in s]
    return weights[-1] if weights else 0


def state_line(rollout: dict[str, Any]) -> str:
    status = rollout.get("status") or {}
    steps = steps_of(rollout)
    desired = int(rollout["spec"].get("replicas", 1))
    canary = status.get("stableRS") and status.get("stableRS") != status.get("currentPodHash")
    where = f", step {status.get('currentStepIndex', 0)}/{len(steps)}, canary weight " \
            f"{weight(rollout)}%" if canary else ""
    return (f"{describe(rollout)}: {status.get('phase') or 'no phase yet'}{where}, "
            f"{status.get('readyReplicas', 0)}/{desired} ready")


def judge(cluster: Cluster, rollout: dict[str, Any],
          deployment_generation: int) -> tuple[str, str]:
    """(state, failure): state "healthy" or "canary-paused" when done, "" while waiting."""
    status = rollout.get("status") or {}
    seen = status.get("workloadObservedGeneration")
    if seen is not None and int(seen or 0) < deployment_generation:
        return "", ""  # Argo has not read the template we applied yet
    phase = status.get("phase")
    if phase == "Degraded":
        return "", str(status.get("message") or "Degraded")
    stable, current = status.get("stableRS"), status.get("currentPodHash")
    desired = int(rollout["spec"].get("replicas", 1))
    if phase == "Healthy" and stable and stable == current \
            and int(status.get("readyReplicas", 0)) >= desired:
        return "healthy", ""
    reasons = {c.get("reason") for c in status.get("pauseConditions") or []}
    if phase == "Paused" and PAUSE_REASON in reasons and stable and stable != current:
        pods = revision_pods(cluster, rollout, str(current))
        if pods and all(map(_ready, pods)):
            return "canary-paused", ""
    return "", ""


def wait(cluster: Cluster, canary: Canary, deployment_generation: int, timeout: float,
         poll: float, echo: Callable[[str], None],
         clock: Callable[[], float] = time.monotonic) -> tuple[str, str, dict[str, Any]]:
    """(state, failure, the Rollout as last seen)."""
    start, last = clock(), ""
    while True:
        rollout = cluster.get(API_VERSION, KIND, canary.namespace, canary.name)
        if rollout is None:
            return "", f"{canary.describe()} disappeared", {}
        line = state_line(rollout)
        if line != last:
            echo(f"{line} ({clock() - start:.0f} s)")
            last = line
        state, failure = judge(cluster, rollout, deployment_generation)
        if state or failure:
            return state, failure, rollout
        if clock() - start >= timeout:
            message = (rollout.get("status") or {}).get("message") or line
            return "", f"timed out after {timeout:g} s waiting for the Rollout: {message}", \
                rollout
        time.sleep(poll)


def summary(rollout: dict[str, Any], state: str = "") -> dict[str, Any]:
    status = rollout.get("status") or {}
    return {"kind": KIND, "name": rollout.get("metadata", {}).get("name", ""),
            "phase": str(status.get("phase", "")), "state": state,
            "message": str(status.get("message", "")),
            "step": int(status.get("currentStepIndex", 0)), "steps": len(steps_of(rollout)),
            "weight": weight(rollout), "stable": str(status.get("stableRS", "")),
            "current": str(status.get("currentPodHash", "")),
            "ready": int(status.get("readyReplicas", 0)),
            "desired": int(rollout.get("spec", {}).get("replicas", 1))}


def deploy_rollout(cluster: Cluster, manifests: list[dict[str, Any]], result: Result,
                   timeout: float, force: bool, poll: float,
                   echo: Callable[[str], None]) -> Result:
    helper = Rollout(cluster, echo, poll=poll)
    start = helper.clock()
    canary = Canary(result.namespace, result.deployment)
    for obj in manifests:
        cluster.apply(obj, MANAGER, force=force)
        result.objects.append({"kind": obj["kind"], "name": obj["metadata"]["name"],
                               "action": "applied"})
        echo(f"applied {describe(obj)}")
    deployment = cluster.get("apps/v1", "Deployment", result.namespace, result.deployment) or {}
    generation = int(deployment.get("metadata", {}).get("generation", 0))
    state, failure, rollout = wait(cluster, canary, generation, timeout, poll, echo,
                                   helper.clock)
    status = rollout.get("status") or {}
    result.revision = str(status.get("currentPodHash", ""))
    if not failure:
        result.rollout = summary(rollout, state)
        if state == "canary-paused":
            echo(f"{canary.describe()}: the canary is up at {weight(rollout)}% and paused at "
                 "its canary step; `mlgen promote` decides")
        result.seconds = round(helper.clock() - start, 1)
        if deployment:
            helper.record(deployment, result)
        return result
    pods = revision_pods(cluster, rollout, result.revision) if rollout else []
    reason = f"{failure}\n{helper.diagnose(rollout, pods)}" if rollout else failure
    if rollout and status.get("stableRS") and status["stableRS"] != status.get("currentPodHash") \
            and not status.get("abort"):
        echo(f"rollout failed: {failure}; aborting {canary.describe()}: Argo Rollouts scales "
             "the canary to 0, the stable revision serves everything")
        _patch_status(cluster, canary, ABORT)
        result.result, result.previous_revision = "rolled-back", str(status["stableRS"])
        rollout = cluster.get(API_VERSION, KIND, canary.namespace, canary.name) or rollout
    elif status.get("abort"):
        result.result = "failed"
        reason += ("\nthe canary was aborted already: set kubernetes.challenger.image_tag to the "
                   "stable version or to a new candidate")
    else:
        result.result = "failed"
        reason += "\nno stable revision to abort to"
    result.reason = reason
    result.rollout = summary(rollout, "aborted" if result.result == "rolled-back" else "")
    result.seconds = round(helper.clock() - start, 1)
    if deployment:
        helper.record(deployment, result)
    return result


def default_timeout(rollout: dict[str, Any]) -> float:
    """Argo's progressDeadlineSeconds (600 s unless the Rollout sets it), plus a margin so
    that Argo's Degraded, with its message, comes before our own deadline."""
    return float(rollout.get("spec", {}).get("progressDeadlineSeconds", 600)) + 30.0
