"""Carry out `mlgen promote`'s decision on the live cluster through the `kubernetes` client.

Promote: the champion Deployment gets the challenger's image (the image the live challenger
runs, so a digest-pinned challenger stays pinned), the rollout is waited for and undone when
it fails exactly as `mlgen deploy` does (`Rollout.run`), then the challenger goes to 0 pods.
Roll back: the challenger goes to 0 pods; the champion is untouched. A failed promote
rollout leaves the challenger running: the champion is back on its old image and the canary
pair is as it was, for someone to look at.

Both writes are server-side applies under the field manager `mlgen`, the one `mlgen deploy`
applies with. Applying a partial object under a manager means "these are now all the fields
I own" and the API server removes the rest, so each write re-applies what `mlgen` already
owns (extracted from the live object's `managedFields`, as client-go's `Extract*` helpers do)
with the one field changed. The next `mlgen deploy` then applies without a conflict.

`--from-cluster` reads each Deployment's pods' /metrics through the API server's pod proxy
and concatenates them: the counters and histogram buckets of all pods add up in
`mlgen.promote.stats`.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import MlgenError
from ..integrations.kubernetes import Cluster
from .rollout import MANAGER, Result, Rollout

CONTAINER = "server"  # the model server's container in both Deployments


@dataclass(frozen=True)
class Step:
    why: str
    action: str


@dataclass(frozen=True)
class Canary:
    namespace: str
    champion: str  # the champion Deployment's name; the challenger's is NAME-challenger

    @property
    def challenger(self) -> str:
        return f"{self.champion}-challenger"


def plan(canary: Canary, promote: bool, image: str) -> list[Step]:
    ns = canary.namespace
    steps = []
    if promote:
        steps += [
            Step("the champion runs the challenger's image",
                 f"apply Deployment {ns}/{canary.champion}: container {CONTAINER} image "
                 f"{image} (server-side apply, field manager {MANAGER})"),
            Step("rolled back to the previous revision when it fails",
                 f"wait for the rollout of Deployment {ns}/{canary.champion}"),
        ]
    steps.append(Step("the challenger (canary or shadow) gets no more requests",
                      f"apply Deployment {ns}/{canary.challenger}: replicas 0 "
                      f"(server-side apply, field manager {MANAGER})"))
    return steps


def _owned(value: Any, fields: dict[str, Any]) -> Any:
    """The part of `value` that a fieldsV1 tree names (f: keys, k:/v: list items, `.`)."""
    if not fields or set(fields) == {"."}:
        return copy.deepcopy(value)
    if isinstance(value, dict):
        out = {}
        for key, sub in fields.items():
            if key.startswith("f:") and key[2:] in value:
                out[key[2:]] = _owned(value[key[2:]], sub)
        return out
    if isinstance(value, list):
        items = []
        for key, sub in fields.items():
            if key.startswith("k:"):
                want = json.loads(key[2:])
                items += [_owned(item, sub) | want for item in value if isinstance(item, dict)
                          and all(item.get(k) == v for k, v in want.items())]
            elif key.startswith("v:"):
                items += [item for item in value if item == json.loads(key[2:])]
        return items
    return copy.deepcopy(value)


def owned_config(live: dict[str, Any], manager: str = MANAGER) -> dict[str, Any]:
    """What `manager` last applied to `live`: the fields its Apply entry owns."""
    entry = next((m for m in live["metadata"].get("managedFields") or []
                  if m.get("manager") == manager and m.get("operation") == "Apply"
                  and not m.get("subresource")), None)
    if entry is None:
        raise MlgenError(f"{live['kind']} {live['metadata'].get('namespace')}/"
                         f"{live['metadata']['name']} was not applied by {manager!r} "
                         "(run `mlgen deploy` first): promote changes only what mlgen owns")
    config = _owned(live, entry.get("fieldsV1") or {})
    meta = config.setdefault("metadata", {})
    meta["name"], meta["namespace"] = live["metadata"]["name"], live["metadata"]["namespace"]
    config["apiVersion"], config["kind"] = live["apiVersion"], live["kind"]
    return dict(config)


def server_image(deployment: dict[str, Any]) -> str:
    containers = deployment["spec"]["template"]["spec"].get("containers", [])
    for container in containers:
        if container.get("name") == CONTAINER:
            return str(container["image"])
    raise MlgenError(f"Deployment {deployment['metadata']['name']} has no container "
                     f"{CONTAINER!r}")


def _live(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    found = cluster.get("apps/v1", "Deployment", namespace, name)
    if found is None:
        raise MlgenError(f"Deployment {namespace}/{name} does not exist: deploy the "
                         "environment with its challenger first")
    return found


def live_challenger_image(cluster: Cluster, canary: Canary) -> str:
    return server_image(_live(cluster, canary.namespace, canary.challenger))


def scale_to_zero(cluster: Cluster, canary: Canary, echo: Callable[[str], None]) -> None:
    config = owned_config(_live(cluster, canary.namespace, canary.challenger))
    config.setdefault("spec", {})["replicas"] = 0
    # force: an autoscaler or `kubectl scale` may own replicas; taking them is the point.
    cluster.apply(config, MANAGER, force=True)
    echo(f"scaled Deployment {canary.namespace}/{canary.challenger} to 0 replicas")


def promote(cluster: Cluster, canary: Canary, environment: str, image: str, *, timeout: float,
            poll: float, echo: Callable[[str], None]) -> Result:
    """Champion to `image`, wait (undo on failure), then the challenger to 0 on success."""
    live = _live(cluster, canary.namespace, canary.champion)
    config = owned_config(live)
    containers = config.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    target = next((c for c in containers or [] if c.get("name") == CONTAINER), None)
    if target is None:
        raise MlgenError(f"mlgen does not own the {CONTAINER!r} container of Deployment "
                         f"{canary.namespace}/{canary.champion}: run `mlgen deploy` first")
    target["image"] = image
    result = Result(environment=environment, deployment=canary.champion,
                    namespace=canary.namespace, image=image)
    result = Rollout(cluster, echo, poll=poll).run([config], result, timeout, force=False)
    if result.result == "succeeded":
        scale_to_zero(cluster, canary, echo)
        result.objects.append({"kind": "Deployment", "name": canary.challenger,
                               "action": "scaled to 0"})
    return result


def cluster_metrics(cluster: Cluster, namespace: str, name: str, port: int, path: str) -> str:
    """Every ready pod's /metrics of one Deployment, read through the pod proxy. The
    champion's selector also matches the challenger's pods (one Service for both), so pods
    count by owner (their ReplicaSet's Deployment), not by label."""
    from ..promote import PromoteInputError

    deployment = _live(cluster, namespace, name)
    rollout = Rollout(cluster, lambda _line: None)
    owners = {rs["metadata"]["uid"] for rs in rollout.replica_sets(deployment)}
    labels = ",".join(f"{k}={v}" for k, v in
                      deployment["spec"]["selector"].get("matchLabels", {}).items())
    pods = [p for p in cluster.list("v1", "Pod", namespace, labels=labels)
            if any(o.get("uid") in owners for o in p["metadata"].get("ownerReferences", []))
            and any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in p.get("status", {}).get("conditions", []))]
    if not pods:
        raise PromoteInputError(f"Deployment {namespace}/{name} has no ready pod to read "
                                f"{path} from")
    return "\n".join(cluster.pod_proxy_get(namespace, p["metadata"]["name"], port, path)
                     for p in pods)
