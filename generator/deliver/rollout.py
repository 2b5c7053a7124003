"""Roll an environment's pinned manifests out through the API and undo it when it fails.

Lives in `mlgen.deliver` (not `mlgen.publish`, which pushes pipeline definitions to CI
servers): this is delivering the model itself to where it runs. It speaks to the cluster only
through `mlgen.integrations.kubernetes.Cluster`, and works on plain manifest dicts.

The rollout is judged the way `kubectl rollout status` judges it (observedGeneration caught
up, updated == available == desired, no ProgressDeadlineExceeded) plus the new pods' Ready
condition, which the rendered readiness probe drives. A failure or the deadline rolls the
Deployment back to the previous ReplicaSet's pod template, as `kubectl rollout undo` does, but
by server-side apply under the same field manager so that the next deploy does not conflict.
"""
from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..integrations.kubernetes import Cluster, describe

MANAGER = "mlgen"
STATUS_MANAGER = "mlgen-status"  # owns only the last-rollout annotation
LAST_ROLLOUT = "mlgen.dev/last-rollout"
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
FATAL_WAITING = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull",
                           "CreateContainerConfigError", "InvalidImageName"})


@dataclass(frozen=True)
class Progress:
    done: bool
    failure: str  # "" while healthy or done
    line: str


@dataclass
class Result:
    environment: str
    deployment: str
    namespace: str
    image: str
    result: str = "succeeded"  # or rolled-back, failed, dry-run
    revision: str = ""
    previous_revision: str = ""
    reason: str = ""
    seconds: float = 0.0
    objects: list[dict[str, str]] = field(default_factory=list)
    rollout: dict[str, Any] = field(default_factory=dict)  # an Argo Rollout's, when there is one

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "rollout" or v}


def judge(deployment: dict[str, Any], pods: list[dict[str, Any]], elapsed: float) -> Progress:
    meta, spec = deployment["metadata"], deployment.get("spec", {})
    status = deployment.get("status", {})
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    available = int(status.get("availableReplicas", 0))
    line = (f"rollout {meta['name']}: {updated}/{desired} updated, {available}/{desired} "
            f"available ({elapsed:.0f} s)")
    for cond in status.get("conditions", []):
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Progress(False, f"Progressing=False ProgressDeadlineExceeded: "
                                   f"{cond.get('message', '')}", line)
    for pod in pods:
        for cs in pod.get("status", {}).get("containerStatuses", []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in FATAL_WAITING:
                return Progress(False, f"pod {pod['metadata']['name']} container {cs['name']}: "
                                       f"{waiting['reason']}", line)
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
        return Progress(False, "", line)
    ready = all(any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in p.get("status", {}).get("conditions", [])) for p in pods)
    done = (updated == desired and available == desired
            and int(status.get("replicas", 0)) == desired and ready and len(pods) >= desired)
    return Progress(done, "", line)


class Rollout:
    def __init__(self, cluster: Cluster, echo: Callable[[str], None], poll: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cluster, self.echo, self.poll, self.clock = cluster, echo, poll, clock

    def new_pods(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        meta = deployment["metadata"]
        revision = meta.get("annotations", {}).get(REVISION)
        for rs in self.replica_sets(deployment):
            if rs["metadata"].get("annotations", {}).get(REVISION) == revision:
                digest = rs["metadata"].get("labels", {}).get(HASH_LABEL, "")
                return self.cluster.list("v1", "Pod", meta["namespace"],
                                         labels=f"{HASH_LABEL}={digest}")
        return []

    def replica_sets(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        meta = deployment["metadata"]
        labels = ",".join(f"{k}={v}" for k, v in
                          deployment["spec"]["selector"].get("matchLabels", {}).items())
        return [rs for rs in self.cluster.list("apps/v1", "ReplicaSet", meta["namespace"],
                                               labels=labels)
                if any(o.get("uid") == meta["uid"]
                       for o in rs["metadata"].get("ownerReferences", []))]

    def wait(self, namespace: str, name: str, timeout: float) -> tuple[str, dict[str, Any]]:
        """"" when the rollout completed, else why not; and the Deployment as last seen."""
        start = self.clock()
        last_line = ""
        while True:
            deployment = self.cluster.get("apps/v1", "Deployment", namespace, name)
            if deployment is None:
                return f"Deployment {namespace}/{name} disappeared", {}
            elapsed = self.clock() - start
            progress = judge(deployment, self.new_pods(deployment), elapsed)
            if progress.line.split(" (")[0] != last_line:
                self.echo(progress.line)
                last_line = progress.line.split(" (")[0]
            if progress.done:
                return "", deployment
            if progress.failure:
                return progress.failure, deployment
            if elapsed >= timeout:
                return f"timed out after {timeout:g} s waiting for the rollout", deployment
            time.sleep(self.poll)

    def diagnose(self, deployment: dict[str, Any], pods: list[dict[str, Any]]) -> str:
        ns = deployment["metadata"]["namespace"]
        lines = ["conditions:"]
        lines += [f"  {c.get('type')}={c.get('status')} {c.get('reason', '')}: "
                  f"{c.get('message', '')}" for c in deployment.get("status", {}).get(
                      "conditions", [])]
        for pod in pods:
            name = pod["metadata"]["name"]
            events = self.cluster.list("v1", "Event", ns,
                                       fields=f"involvedObject.name={name},type=Warning")
            for event in events[-5:]:
                lines.append(f"  event {name}: {event.get('reason')}: {event.get('message')} "
                             f"(x{event.get('count', 1)})")
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in pod.get("status", {}).get("conditions", []))
            if not ready:
                log = self.cluster.pod_log(ns, name, "server", 10).rstrip()
                lines.append(f"  log {name} (last lines):")
                lines += [f"    {line}" for line in log.splitlines()]
        return "\n".join(lines)

    def previous_template(self, deployment: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        current = int(deployment["metadata"].get("annotations", {}).get(REVISION, "0"))
        older = [(int(rs["metadata"]["annotations"][REVISION]), rs)
                 for rs in self.replica_sets(deployment)
                 if int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) < current]
        if not older:
            return None
        revision, rs = max(older, key=lambda pair: pair[0])
        template = copy.deepcopy(rs["spec"]["template"])
        template.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
        return str(revision), template

    def record(self, deployment: dict[str, Any], result: Result) -> None:
        meta = deployment["metadata"]
        note = {"result": result.result, "revision": result.revision, "image": result.image,
                "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "reason": result.reason.splitlines()[0] if result.reason else ""}
        self.cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                         "annotations": {LAST_ROLLOUT: json.dumps(note)}}},
                           STATUS_MANAGER, force=True)

    def run(self, manifests: list[dict[str, Any]], result: Result, timeout: float,
            force: bool) -> Result:
        start = self.clock()
        deployment_manifest = next(m for m in manifests if m["kind"] == "Deployment"
                                   and m["metadata"]["name"] == result.deployment)
        for obj in manifests:
            self.cluster.apply(obj, MANAGER, force=force)
            result.objects.append({"kind": obj["kind"], "name": obj["metadata"]["name"],
                                   "action": "applied"})
            self.echo(f"applied {describe(obj)}")
        failure, deployment = self.wait(result.namespace, result.deployment, timeout)
        result.revision = deployment.get("metadata", {}).get("annotations", {}).get(REVISION, "")
        if not failure:
            result.seconds = round(self.clock() - start, 1)
            self.record(deployment, result)
            return result
        pods = self.new_pods(deployment)
        reason = f"{failure}\n{self.diagnose(deployment, pods)}"
        previous = self.previous_template(deployment)
        if previous is None:
            result.result = "failed"
            result.reason = f"{reason}\nno previous revision to roll back to"
        else:
            result.previous_revision, template = previous
            self.echo(f"rollout failed: {failure}; rolling back to revision {previous[0]}")
            undo = copy.deepcopy(deployment_manifest)
            undo["spec"]["template"] = template
            self.cluster.apply(undo, MANAGER, force=True)
            again, _ = self.wait(result.namespace, result.deployment, timeout)
            result.result = "rolled-back" if not again else "failed"
            result.reason = reason if not again else f"{reason}\nthe rollback failed too: {again}"
        result.seconds = round(self.clock() - start, 1)
        self.record(deployment, result)
        return result
