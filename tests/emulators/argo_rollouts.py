"""The Argo Rollouts part of the Kubernetes emulator: the `argoproj.io/v1alpha1` `rollouts`
resource and a play of the Argo Rollouts controller for a basic canary (no traffic router).

Served (through tests/emulators/kubernetes.py): GET, server-side apply and merge PATCH of
Rollouts, and merge PATCH of their `status` subresource (what `kubectl argo rollouts
promote|abort` send). Every Rollout stored or answered is checked against the Rollout CRD
schema mlgen vendors (strict: unknown fields are errors); a write that fails answers 422.

The controller play follows Argo's documented behaviour, on each request like the emulator's
Deployment controller:

- The pod template is the Rollout's own or, with `workloadRef`, the referenced Deployment's.
  Its hash is the revision's `rollouts-pod-template-hash`.
- The first revision becomes stable at once, without steps (no stable revision to compare).
- A template change while a stable revision exists starts the canary. It runs the steps up to
  the first `pause` (setWeight before it sets the share): `Progressing` until the canary's
  pods at that weight are Ready, then the Rollout is `Paused` with a `CanaryPauseStep` pause
  condition; past the progress deadline it is `Degraded` (`ProgressDeadlineExceeded`). A
  change back to the stable template is a rollback to stable: Healthy at once, no steps.
- A single revision is `Healthy` once its pods are Ready (`Progressing` before).
  `status.workloadObservedGeneration` is the referenced Deployment's generation.
- Pause conditions cleared (and `spec.paused` not true): the canary goes to 100%, and becomes
  stable once all its pods are Ready (`Progressing` until then). Past the progress deadline it
  is `Degraded` with `ProgressDeadlineExceeded`.
- `status.abort: true`: the canary is scaled to 0, the stable revision gets every pod, and
  the Rollout is `Degraded` (`RolloutAborted`) until its template changes.
- Pods: `spec.replicas` (default 1) split by the current setWeight as Argo does without a
  traffic router (the nearest count, at least one canary pod), labelled from the template plus
  the hash and `canaryMetadata`/`stableMetadata` labels, Ready like any emulated pod (the
  emulator's broken-image rules apply). No ReplicaSet objects are stored for them.

- `workloadRef.scaleDown: onsuccess`: once the Rollout is Healthy, the referenced Deployment
  is scaled to 0 (a merge patch of `spec.replicas` under field manager `argo-rollouts`).

Not played: the other `scaleDown` modes, analysis, experiments, blue-green, traffic routing.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.emulators.kubernetes import ClusterState

API_VERSION = "argoproj.io/v1alpha1"
PLURAL = "rollouts"
HASH_LABEL = "rollouts-pod-template-hash"


@cache
def _validator() -> Any:
    import jsonschema
    from mlgen.validate.rollouts import rollout_schema

    return jsonschema.Draft7Validator(rollout_schema())


def schema_problems(obj: dict[str, Any]) -> list[str]:
    """Strict findings against the vendored Rollout CRD schema."""
    return [f"Rollout {'.'.join(map(str, e.path))}: {e.message}"
            for e in _validator().iter_errors(obj)]


def _template(state: ClusterState, rollout: dict[str, Any]) -> dict[str, Any] | None:
    spec = rollout["spec"]
    ref = spec.get("workloadRef")
    if not ref:
        return spec.get("template")
    found = state.objects.get(("apps/v1", "deployments", rollout["metadata"]["namespace"],
                               ref.get("name", "")))
    return None if found is None else found["spec"]["template"]


def _workload_generation(state: ClusterState, rollout: dict[str, Any]) -> int:
    ref = rollout["spec"].get("workloadRef") or {}
    found = state.objects.get(("apps/v1", "deployments", rollout["metadata"]["namespace"],
                               ref.get("name", ""))) if ref else None
    return int((found or {}).get("metadata", {}).get("generation", 0))


def _scale_down(state: ClusterState, rollout: dict[str, Any], at: float) -> None:
    ref = rollout["spec"].get("workloadRef") or {}
    ns = rollout["metadata"]["namespace"]
    found = state.objects.get(("apps/v1", "deployments", ns, ref.get("name", ""))) \
        if ref.get("scaleDown") == "onsuccess" else None
    if found is not None and found["spec"].get("replicas") != 0:
        state.apply("apps/v1", "deployments", ns, ref["name"], {"spec": {"replicas": 0}},
                    "argo-rollouts", force=False, dry_run=False, operation="Update", at=at)


def _hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _canary_count(replicas: int, weight: int) -> int:
    """Argo's basic-canary split: the canary count nearest to the weight, at least one while
    the weight is between 0 and 100 and there are two or more pods (surge included)."""
    if weight <= 0:
        return 0
    if weight >= 100:
        return replicas
    exact = replicas * weight / 100
    low, high = math.floor(exact), math.ceil(exact)
    count = high if (high - exact) <= (exact - low) else low
    return min(max(count, 1), replicas)


def _weight(steps: list[dict[str, Any]], index: int) -> int:
    """The last setWeight before step `index`."""
    weights = [s["setWeight"] for s in steps[:index] if "setWeight" in s]
    return int(weights[-1]) if weights else 0


def _stamp(at: float) -> str:
    from tests.emulators.kubernetes import now_rfc3339

    return now_rfc3339(at)


def reconcile(state: ClusterState, rollout: dict[str, Any], at: float) -> None:
    template = _template(state, rollout)
    if template is None:
        return
    meta, spec = rollout["metadata"], rollout["spec"]
    canary = (spec.get("strategy") or {}).get("canary") or {}
    steps = list(canary.get("steps") or [])
    status = rollout.setdefault("status", {})
    current = _hash(template)
    templates = rollout.setdefault("_templates", {})
    templates[current] = copy.deepcopy(template)
    revision = rollout.setdefault("_revisions", {})
    revision.setdefault(current, len(revision) + 1)
    stable = status.get("stableRS")
    pause = next((i for i, s in enumerate(steps) if "pause" in s), len(steps))
    if stable is None or current == stable:
        if current != status.get("currentPodHash") or stable is None:
            for key in ("abort", "pauseConditions", "controllerPause", "message", "abortedAt"):
                status.pop(key, None)
        status.update(stableRS=current, currentPodHash=current, currentStepIndex=len(steps),
                      phase="Healthy")
    elif current != status.get("currentPodHash"):  # a new template: the canary starts
        for key in ("abort", "abortedAt", "pauseConditions", "controllerPause"):
            status.pop(key, None)
        status.update(currentPodHash=current, currentStepIndex=0, phase="Progressing",
                      message="more replicas need to be updated")
        state.rollout_started[(meta["namespace"], f"rollout/{meta['name']}")] = at
    elif status.get("abort"):
        status.pop("pauseConditions", None)
        status.pop("controllerPause", None)
        status.setdefault("abortedAt", _stamp(at))
        status.update(currentStepIndex=0, phase="Degraded",
                      message=f"RolloutAborted: Rollout aborted update to revision "
                              f"{revision[current]}")
    elif status.get("currentStepIndex", 0) < pause:
        pass  # stepping towards the pause: judged below, once the canary's pods are counted
    elif not status.get("pauseConditions") and not spec.get("paused"):
        if status.get("currentStepIndex", 0) < len(steps):  # resumed: progress counts anew
            state.rollout_started[(meta["namespace"], f"rollout/{meta['name']}")] = at
        status.pop("controllerPause", None)
        status.update(currentStepIndex=len(steps))
    stable = status["stableRS"]
    replicas = int(spec.get("replicas", 1))
    if current == stable or status.get("abort"):
        want = {stable: replicas}
    else:
        index = max(int(status["currentStepIndex"]), pause)  # before the pause: its weight
        count = _canary_count(replicas, _weight(steps, index) if index < len(steps) else 100)
        want = {current: count, stable: replicas - count}
    pods = _sync_pods(state, rollout, want, canary, at)
    started = state.rollout_started.get((meta["namespace"], f"rollout/{meta['name']}"), at)
    deadline = state.progress_deadline_seconds or float(spec.get("progressDeadlineSeconds", 600))
    if current == stable and not status.get("abort"):
        ready = [p for p in pods.get(current, []) if state.ready(p)]
        status["phase"] = "Healthy" if len(ready) >= replicas else "Progressing"
    elif not status.get("abort") and status["currentStepIndex"] < pause:
        ready = [p for p in pods.get(current, []) if state.ready(p)]
        if len(ready) >= want[current] and pause == len(steps):  # no pause: on to 100%
            status["currentStepIndex"] = len(steps)
        elif len(ready) >= want[current]:
            status.update(currentStepIndex=pause, phase="Paused", controllerPause=True,
                          message="CanaryPauseStep",
                          pauseConditions=[{"reason": "CanaryPauseStep",
                                            "startTime": _stamp(at)}])
        elif at - started > deadline:
            status.update(phase="Degraded", message="ProgressDeadlineExceeded: ReplicaSet "
                                                    f'"{meta["name"]}-{current}" has timed out '
                                                    "progressing.")
    if current != stable and not status.get("abort") and status["currentStepIndex"] >= len(steps):
        ready = [p for p in pods.get(current, []) if state.ready(p)]
        if len(ready) >= replicas:
            status.update(stableRS=current, phase="Healthy")
            status.pop("message", None)
            _sync_pods(state, rollout, {current: replicas}, canary, at)
        elif at - started > deadline:
            status.update(phase="Degraded", message="ProgressDeadlineExceeded: ReplicaSet "
                                                    f'"{meta["name"]}-{current}" has timed out '
                                                    "progressing.")
        else:
            status.update(phase="Progressing", message="more replicas need to be updated")
    if status.get("phase") == "Healthy":
        _scale_down(state, rollout, at)
    every = [p for group in pods.values() for p in group]
    status.update(replicas=len(every), readyReplicas=sum(state.ready(p) for p in every),
                  availableReplicas=sum(state.ready(p) for p in every),
                  updatedReplicas=len(pods.get(current, [])), observedGeneration=str(
                      meta.get("generation", 1)), workloadObservedGeneration=str(
                      _workload_generation(state, rollout)),
                  selector=",".join(f"{k}={v}" for k, v in sorted(
                      (spec.get("selector") or {}).get("matchLabels", {}).items())))


def _sync_pods(state: ClusterState, rollout: dict[str, Any], want: dict[str, int],
               canary: dict[str, Any], at: float) -> dict[str, list[dict[str, Any]]]:
    meta = rollout["metadata"]
    ns, stable = meta["namespace"], rollout["status"]["stableRS"]
    owner = f"{meta['uid']}-"
    mine = [p for p in state.of_kind("v1", "pods", ns)
            if p["metadata"]["ownerReferences"][0]["uid"].startswith(owner)]
    by_hash: dict[str, list[dict[str, Any]]] = {}
    for pod in mine:
        by_hash.setdefault(pod["metadata"]["labels"][HASH_LABEL], []).append(pod)
    for digest in set(by_hash) | set(want):
        pods = by_hash.setdefault(digest, [])
        while len(pods) > want.get(digest, 0):
            gone = pods.pop()
            del state.objects[("v1", "pods", ns, gone["metadata"]["name"])]
        while len(pods) < want.get(digest, 0):
            pods.append(_new_pod(state, rollout, digest, at))
        extra = canary.get("stableMetadata" if digest == stable else "canaryMetadata") or {}
        for pod in pods:
            pod["metadata"]["labels"].update(extra.get("labels") or {})
            state.update_pod(pod, at)
    return {k: v for k, v in by_hash.items() if v}


def _new_pod(state: ClusterState, rollout: dict[str, Any], digest: str,
             at: float) -> dict[str, Any]:
    meta = rollout["metadata"]
    template = copy.deepcopy(rollout["_templates"][digest])
    labels = {**(template.get("metadata") or {}).get("labels", {}), HASH_LABEL: digest}
    name = f"{meta['name']}-{digest}"
    suffix = hashlib.sha256(f"{name}{state.resource_version}".encode()).hexdigest()[:5]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{name}-{suffix}", "namespace": meta["namespace"],
                        "labels": labels,
                        "annotations": (template.get("metadata") or {}).get("annotations", {}),
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                             "name": name, "uid": f"{meta['uid']}-{digest}",
                                             "controller": True}]},
           "spec": template["spec"], "status": {"phase": "Pending"}}
    return state.store(pod, "pods", at)


def patch_status(state: ClusterState, namespace: str, name: str, patch: dict[str, Any],
                 at: float) -> dict[str, Any]:
    """A merge patch of the status subresource: only `status` is taken from the body."""
    from tests.emulators.kubernetes import ApiError, merge

    live = state.objects.get((API_VERSION, PLURAL, namespace, name))
    if live is None:
        raise ApiError(404, f'{PLURAL}.argoproj.io "{name}" not found')
    result = copy.deepcopy(live)
    status = patch.get("status")
    if status is not None and not isinstance(status, dict):
        raise ApiError(422, f'Rollout.argoproj.io "{name}" is invalid: status: must be an '
                            "object")
    merge(result.setdefault("status", {}), status or {})
    problems = schema_problems({k: v for k, v in result.items() if not k.startswith("_")})
    if problems:
        raise ApiError(422, f'Rollout.argoproj.io "{name}" is invalid: ' + "; ".join(problems[:5]))
    return state.store(result, PLURAL, at)
