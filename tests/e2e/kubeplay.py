"""Turn the manifests `mlgen deploy --dry-run` prints into what `podman kube play` can run.

kube play runs Pods, Deployments (their pod template), ConfigMaps (for envFrom) and
PersistentVolumeClaims (as named volumes); it ignores Services, HPAs, CronJobs and the rest.
So the server gets its ConfigMap, PVC and Deployment, and the drift CronJob's job template
becomes a Pod that shares the PVC. The only change made to an object is a hostPort on
loopback for the server's containerPort, so the test can reach it without a Service; probe
paths and ports are read from the manifest, never restated here. A canary overlay has two
Deployments (champion and challenger), each played from its own file; a name suffix lets a
second environment's pods and volume run beside the first's, as another cluster would.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Probes:
    container_port: int
    ready_path: str
    live_path: str
    startup_seconds: int  # how long the startup probe allows: periodSeconds * failureThreshold


def load(manifests: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifests) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} in the rendered overlay, found {len(found)}"
    return found[0]


def deployment(docs: list[dict[str, Any]], name: str | None = None) -> dict[str, Any]:
    """The overlay's only Deployment, or the one called `name` (a canary overlay has two)."""
    if name is None:
        return one(docs, "Deployment")
    found = [d for d in docs if d.get("kind") == "Deployment" and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one Deployment {name} in the rendered overlay"
    return found[0]


def server_container(docs: list[dict[str, Any]], name: str | None = None) -> dict[str, Any]:
    containers = deployment(docs, name)["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "server")


def probes(docs: list[dict[str, Any]], name: str | None = None) -> Probes:
    container = server_container(docs, name)
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}

    def port_of(probe: dict[str, Any]) -> int:
        port = probe["httpGet"]["port"]
        return int(ports[port]) if isinstance(port, str) else int(port)

    ready, live, startup = (
        container[k] for k in ("readinessProbe", "livenessProbe", "startupProbe")
    )
    assert port_of(ready) == port_of(live) == port_of(startup), "probes use different ports"
    return Probes(
        container_port=port_of(ready),
        ready_path=ready["httpGet"]["path"],
        live_path=live["httpGet"]["path"],
        startup_seconds=int(startup.get("periodSeconds", 10))
        * int(startup.get("failureThreshold", 3)),
    )


def server_play(docs: list[dict[str, Any]], host_port: int, name: str | None = None, *,
                suffix: str = "", with_claim: bool = True) -> str:
    """ConfigMap + PVC + Deployment, the server's port published on 127.0.0.1:host_port.

    `name` picks the Deployment of a canary overlay; `suffix` is appended to its name and the
    claim's (kube play names the pod after the Deployment and the volume after the claim);
    without `with_claim` the pod mounts the volume an earlier play of the overlay created.
    """
    config_map, claim = one(docs, "ConfigMap"), copy.deepcopy(one(docs, "PersistentVolumeClaim"))
    workload = copy.deepcopy(deployment(docs, name))
    pod = workload["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "server")
    for port in container["ports"]:
        if port["containerPort"] == probes(docs, name).container_port:
            port.update(hostPort=host_port, hostIP="127.0.0.1")
    if suffix:
        workload["metadata"]["name"] += suffix
        for volume in pod.get("volumes", []):
            ref = volume.get("persistentVolumeClaim")
            if ref and ref["claimName"] == claim["metadata"]["name"]:
                ref["claimName"] += suffix
        claim["metadata"]["name"] += suffix
    objects = [config_map, claim, workload] if with_claim else [config_map, workload]
    return yaml.safe_dump_all(objects, sort_keys=False)


def drift_play(docs: list[dict[str, Any]], pod_name: str) -> str:
    """The drift CronJob's job template as a Pod (kube play does not run CronJobs).

    The PVC is left out: the server's play already created its volume, which this pod mounts
    by claim name, as the CronJob's pods share it with the server's in a cluster.
    """
    # The monitor CronJob renders beside it; pick the drift one by its name.
    crons = [d for d in docs if d.get("kind") == "CronJob"
             and d["metadata"]["name"].endswith("-drift")]
    assert len(crons) == 1, f"expected one drift CronJob in the rendered overlay, found {crons}"
    cron = crons[0]
    template = copy.deepcopy(cron["spec"]["jobTemplate"]["spec"]["template"])
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name, "labels": template.get("metadata", {}).get("labels", {})},
        "spec": template["spec"],
    }
    return yaml.safe_dump_all([one(docs, "ConfigMap"), pod], sort_keys=False)


def claim_name(docs: list[dict[str, Any]]) -> str:
    return str(one(docs, "PersistentVolumeClaim")["metadata"]["name"])


def images(docs: list[dict[str, Any]]) -> set[str]:
    """Every container image the workloads name (what deploy pinned)."""
    out: set[str] = set()
    for doc in docs:
        spec = doc.get("spec", {})
        pod = (spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
               or {}).get("spec", {})
        out.update(c["image"] for c in pod.get("containers", []))
    return out
