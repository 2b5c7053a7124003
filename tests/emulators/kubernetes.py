"""An emulator of the Kubernetes API subset `mlgen deploy` and `mlgen status` call.

No API server can run on our machines, so this serves, over plain HTTP with bearer tokens, what
the real `kubernetes` client sends: objects of any kind stored generically and written by
server-side apply (`PATCH` with `application/apply-patch+yaml`, `fieldManager`, `force`,
`dryRun=All`; field ownership recorded in `managedFields`, conflicts with another manager's
fields answered 409 with `FieldManagerConflict` causes as the API server does) or by merge
patches (an `Update` operation); GET and list with label and field selectors; pod logs
(`tailLines`, `container`); the pod proxy (`pods/NAME:PORT/proxy/PATH`; `/metrics` answers
the Prometheus text set for the pod's image in `state.metrics`, `POST metrics`). Errors are `Status`
objects with the API server's reasons (NotFound, Conflict, Invalid, Unauthorized, InternalError).

It also plays the controllers a rollout needs. A Deployment whose pod template changed gets a
ReplicaSet for that template (an existing one when the template matches an older revision, as
after a rollback) with the next `deployment.kubernetes.io/revision`, and pods; a pod turns
Ready `ready_seconds` after it was created, unless its image matches a broken rule: `never-ready`
(running, the readiness probe answers 503: `Unhealthy` Warning events) or `crash-loop`
(`CrashLoopBackOff`, `BackOff` Warning events); both log the rule's lines. Once every new pod is
Ready the old ReplicaSets scale to zero; a rollout not complete within the Deployment's
`progressDeadlineSeconds` gets `Progressing=False` with reason `ProgressDeadlineExceeded`.
The controllers run on each request (no thread), so the state is a function of time and requests.

Every object it stores or answers is checked against the Kubernetes JSON schemas that
`kubernetes-validate` ships (strict: unknown fields are errors), when that package is installed:
a request whose object fails answers 422 Invalid, and anything it would answer that fails is
recorded in `state.schema_errors` (tests assert that list stays empty). Kinds without a schema
there (CRDs such as ServiceMonitor) are stored unchecked.

Scenario knobs under `/_emulator/` (no auth, never faulted): `GET state`, `GET requests`,
`POST faults` (`{"status": 409|500|..., "count": N, "method": "PATCH", "path": "deployments",
"delay": S}`: the next N matching requests answer that status, or answer only after S seconds),
`POST broken` (`{"image": "substring", "mode": "never-ready"|"crash-loop", "log": [...],
"pods": "pod-name regex"}`),
`POST metrics` (`{"image": "substring", "text": "...Prometheus text..."}`),
`POST settings` (`{"ready_seconds": S, "progress_deadline_seconds": S}`).
Argo Rollouts' `rollouts` (argoproj.io/v1alpha1) and their `status` subresource are served, and
their controller played, by tests/emulators/argo_rollouts.py.
Run it alone: `python -m tests.emulators.kubernetes --port 6443 --token s3cret`.
"""
from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from tests.emulators import argo_rollouts

ROUTE = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
                   r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)"
                   r"(?:/(?P<name>[^/]+)(?:/(?P<sub>.+))?)?$")
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
# Metadata the server owns: never part of a manager's field set, never compared for conflicts.
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")
REASONS = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 409: "Conflict",
           415: "UnsupportedMediaType", 422: "Invalid", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}


def now_rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- schema checks --------------------------------------------------------------------------

@functools.cache
def _validator(schema_file: str) -> Any:
    import jsonschema
    import kubernetes_validate.utils as kv
    from referencing import Registry, Resource

    version = kv.latest_version()
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    schema = kv.schema_contents(f"{folder}/{schema_file}", version)
    defs = kv.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def schema_problems(obj: dict[str, Any]) -> list[str]:
    """Strict-schema findings for one object; [] when it passes or has no published schema."""
    if (obj.get("apiVersion"), obj.get("kind")) == (argo_rollouts.API_VERSION, "Rollout"):
        return argo_rollouts.schema_problems(public(obj))
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        return []
    api_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", str(obj.get("apiVersion", "")))
    name = "status-meta-v1.json" if obj.get("kind") == "Status" \
        else f"{str(obj.get('kind', '')).lower()}-{api_version}.json"
    try:
        validator = _validator(name)
    except (FileNotFoundError, OSError):
        return []
    return [f"{obj.get('kind')} {'.'.join(map(str, e.path))}: {e.message}"
            for e in validator.iter_errors(obj)]


# --- field ownership (a simplified structured-merge-diff: lists are atomic) -----------------

def leaf_paths(value: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        paths: set[tuple[str, ...]] = set()
        for key, sub in value.items():
            if prefix == ("metadata",) and key in SERVER_FIELDS:
                continue
            paths |= leaf_paths(sub, (*prefix, key))
        return paths
    return {prefix} if prefix else set()


def fields_v1(paths: set[tuple[str, ...]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def paths_of(fields: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if not fields:
        return {prefix} if prefix else set()
    out: set[tuple[str, ...]] = set()
    for key, sub in fields.items():
        out |= paths_of(sub, (*prefix, key[2:]))
    return out


def lookup(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def remove(obj: dict[str, Any], path: tuple[str, ...]) -> None:
    parents = [obj]
    for key in path[:-1]:
        nxt = parents[-1].get(key)
        if not isinstance(nxt, dict):
            return
        parents.append(nxt)
    parents[-1].pop(path[-1], None)
    for depth in range(len(parents) - 1, 0, -1):  # drop maps the removal left empty
        if not parents[depth]:
            parents[depth - 1].pop(path[depth - 1], None)


def merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def selector_matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, want = term.partition("=")
        if labels.get(key.rstrip("!=")) != want.lstrip("="):
            return False
    return True


def fields_match(obj: dict[str, Any], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, want = term.partition("=")
        if str(lookup(obj, tuple(key.split(".")))) != want:
            return False
    return True


def template_key(template: dict[str, Any]) -> str:
    clean = copy.deepcopy(template)
    clean.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
    return json.dumps(clean, sort_keys=True)


# --- state -----------------------------------------------------------------------------------

@dataclass
class Broken:
    image: str
    mode: str = "never-ready"  # or "crash-loop"
    log: tuple[str, ...] = ("Traceback (most recent call last):",
                            "RuntimeError: model artifact failed to load")
    pods: str = ""  # a regular expression pod names must match too ("" matches every pod)


@dataclass
class Fault:
    status: int = 0
    count: int = 1
    method: str = ""
    path: str = ""
    delay: float = 0.0


class ApiError(Exception):
    def __init__(self, code: int, message: str, causes: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.code, self.message, self.causes = code, message, causes or []


@dataclass
class ClusterState:
    tokens: tuple[str, ...] = ("emulator-token",)
    ready_seconds: float = 0.3
    progress_deadline_seconds: float | None = None  # overrides the Deployments' own
    objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    broken: list[Broken] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # image substring -> the /metrics text its pods answer through the pod proxy
    metrics: dict[str, str] = field(default_factory=dict)
    schema_errors: list[str] = field(default_factory=list)
    rollout_started: dict[tuple[str, str], float] = field(default_factory=dict)
    resource_version: int = 1000
    lock: threading.RLock = field(default_factory=threading.RLock)

    # generic storage

    def key(self, obj: dict[str, Any], plural: str) -> tuple[str, str, str, str]:
        meta = obj["metadata"]
        return (obj["apiVersion"], plural, meta.get("namespace", ""), meta["name"])

    def store(self, obj: dict[str, Any], plural: str, at: float) -> dict[str, Any]:
        self.resource_version += 1
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339(at))
        meta["resourceVersion"] = str(self.resource_version)
        self.objects[self.key(obj, plural)] = obj
        return obj

    def of_kind(self, api_version: str, plural: str, namespace: str) -> list[dict[str, Any]]:
        return [o for (v, p, ns, _), o in sorted(self.objects.items())
                if v == api_version and p == plural and ns == namespace]

    def event(self, pod: dict[str, Any], kind: str, reason: str, message: str, at: float) -> None:
        meta = pod["metadata"]
        name = f"{meta['name']}.{reason.lower()}"
        existing = self.objects.get(("v1", "events", meta["namespace"], name))
        if existing:
            existing["count"] += 1
            existing["lastTimestamp"] = now_rfc3339(at)
            return
        self.store({"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": name, "namespace": meta["namespace"]},
                    "involvedObject": {"kind": "Pod", "name": meta["name"],
                                       "namespace": meta["namespace"], "uid": meta["uid"],
                                       "apiVersion": "v1", "fieldPath": "spec.containers{server}"},
                    "reason": reason, "message": message, "type": kind, "count": 1,
                    "firstTimestamp": now_rfc3339(at), "lastTimestamp": now_rfc3339(at),
                    "source": {"component": "kubelet"}}, "events", at)

    def broken_rule(self, pod: dict[str, Any]) -> Broken | None:
        images = [c.get("image", "") for c in pod["spec"].get("containers", [])]
        return next((b for b in self.broken for i in images if b.image in i
                     and re.search(b.pods, pod["metadata"]["name"])), None)

    # server-side apply and merge patch

    def apply(self, api_version: str, plural: str, namespace: str, name: str,
              applied: dict[str, Any], manager: str, force: bool, dry_run: bool,
              operation: str, at: float) -> dict[str, Any]:
        if not manager and operation == "Apply":
            raise ApiError(400, "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                                "Required value: is required for apply patch")
        meta = applied.get("metadata") or {}
        if operation == "Apply" and (applied.get("apiVersion") != api_version
                                     or meta.get("name") != name):
            raise ApiError(400, f"the apiVersion/name in the body ({applied.get('apiVersion')}/"
                                f"{meta.get('name')}) does not match the URL")
        live = self.objects.get((api_version, plural, namespace, name))
        if live is None and operation != "Apply":
            raise ApiError(404, f'{plural} "{name}" not found')
        result = copy.deepcopy(live) if live else {"apiVersion": api_version,
                                                   "kind": applied["kind"], "metadata": {}}
        managers = {m["manager"]: m for m in (result["metadata"].get("managedFields") or [])}
        mine = paths_of(managers[manager]["fieldsV1"]) if manager in managers else set()
        new = leaf_paths(applied)
        if operation == "Apply":
            conflicts = [(other, p) for other, entry in managers.items() if other != manager
                         for p in paths_of(entry["fieldsV1"]) & new
                         if lookup(result, p) != lookup(applied, p)]
            if conflicts and not force:
                causes = [{"reason": "FieldManagerConflict", "field": "." + ".".join(p),
                           "message": f'conflict with "{other}"'} for other, p in conflicts]
                raise ApiError(409, f"Apply failed with {len(conflicts)} conflict(s): "
                               + "; ".join(f'conflict with "{o}": .{".".join(p)}'
                                           for o, p in conflicts), causes)
            for path in mine - new:  # fields this manager stopped applying go away
                if not any(path in paths_of(e["fieldsV1"]) for o, e in managers.items()
                           if o != manager):
                    remove(result, path)
        merge(result, {k: v for k, v in applied.items() if k != "status"})
        result["metadata"]["namespace"] = namespace
        result["metadata"]["name"] = name
        for other, entry in list(managers.items()):  # applied fields change hands
            if other != manager:
                left = paths_of(entry["fieldsV1"]) - new
                if left:
                    entry["fieldsV1"] = fields_v1(left)
                else:
                    del managers[other]
        owned = new if operation == "Apply" else (mine | new)
        managers[manager] = {"manager": manager, "operation": operation,
                             "apiVersion": api_version, "time": now_rfc3339(at),
                             "fieldsType": "FieldsV1", "fieldsV1": fields_v1(owned)}
        result["metadata"]["managedFields"] = list(managers.values())
        self.default(result, live)
        problems = schema_problems(result)
        if problems:
            raise ApiError(422, f"{applied.get('kind')} \"{name}\" is invalid: "
                                + "; ".join(problems[:5]))
        if dry_run:
            return result
        return self.store(result, plural, at)

    def default(self, obj: dict[str, Any], live: dict[str, Any] | None) -> None:
        """What the API server fills in: generation, and a Deployment's defaults and status."""
        old_spec = (live or {}).get("spec")
        generation = int((live or {}).get("metadata", {}).get("generation", 0))
        if "spec" in obj and obj["spec"] != old_spec:
            generation += 1
        obj["metadata"]["generation"] = max(generation, 1)
        if obj.get("kind") == "Deployment":
            spec = obj["spec"]
            spec.setdefault("replicas", 1)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault("revisionHistoryLimit", 10)
            obj.setdefault("status", {})

    # controllers

    def reconcile(self, at: float) -> None:
        for deployment in [o for (v, p, _, _), o in list(self.objects.items())
                           if v == "apps/v1" and p == "deployments"]:
            self.reconcile_deployment(deployment, at)
        for rollout in [o for (v, p, _, _), o in list(self.objects.items())
                        if v == argo_rollouts.API_VERSION and p == argo_rollouts.PLURAL]:
            argo_rollouts.reconcile(self, rollout, at)

    def reconcile_deployment(self, d: dict[str, Any], at: float) -> None:
        meta, spec = d["metadata"], d["spec"]
        ns, desired = meta["namespace"], int(spec.get("replicas", 1))
        owned = [rs for rs in self.of_kind("apps/v1", "replicasets", ns)
                 if any(r.get("uid") == meta["uid"] for r in rs["metadata"]["ownerReferences"])]
        want = template_key(spec["template"])
        current = next((rs for rs in owned if template_key(rs["spec"]["template"]) == want), None)
        top = max((int(rs["metadata"]["annotations"][REVISION]) for rs in owned), default=0)
        if current is None or int(current["metadata"]["annotations"][REVISION]) != top:
            revision = top + 1
            if current is None:
                digest = hashlib.sha256(want.encode()).hexdigest()[:10]
                template = copy.deepcopy(spec["template"])
                template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
                selector = copy.deepcopy(spec["selector"])
                selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
                current = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                           "metadata": {"name": f"{meta['name']}-{digest}", "namespace": ns,
                                        "labels": dict(template["metadata"]["labels"]),
                                        "annotations": {},
                                        "ownerReferences": [{
                                            "apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": meta["name"], "uid": meta["uid"],
                                            "controller": True}]},
                           "spec": {"replicas": 0, "selector": selector, "template": template},
                           "status": {"replicas": 0}}
                owned.append(current)
            current["metadata"]["annotations"][REVISION] = str(revision)
            self.store(current, "replicasets", at)
            meta.setdefault("annotations", {})[REVISION] = str(revision)
            self.rollout_started[(ns, meta["name"])] = at
        current["spec"]["replicas"] = desired
        pods_of = {rs["metadata"]["name"]: self.pods_of(rs) for rs in owned}
        for _ in range(desired - len(pods_of[current["metadata"]["name"]])):
            pods_of[current["metadata"]["name"]].append(self.new_pod(current, at))
        while len(pods_of[current["metadata"]["name"]]) > desired:  # scaled down
            gone = pods_of[current["metadata"]["name"]].pop()
            del self.objects[("v1", "pods", ns, gone["metadata"]["name"])]
        for pods in pods_of.values():
            for pod in pods:
                self.update_pod(pod, at)
        new_pods = pods_of[current["metadata"]["name"]]
        new_ready = sum(self.ready(p) for p in new_pods)
        complete = new_ready >= desired
        for rs in owned:
            name = rs["metadata"]["name"]
            if rs is not current and complete and pods_of[name]:
                for pod in pods_of[name]:
                    del self.objects[("v1", "pods", ns, pod["metadata"]["name"])]
                pods_of[name] = []
                rs["spec"]["replicas"] = 0
            ready = sum(self.ready(p) for p in pods_of[name])
            rs["status"] = {"replicas": len(pods_of[name]), "readyReplicas": ready,
                            "availableReplicas": ready,
                            "observedGeneration": rs["metadata"].get("generation", 1)}
            rs["metadata"].setdefault("generation", 1)
        every = [p for pods in pods_of.values() for p in pods]
        ready_all = sum(self.ready(p) for p in every)
        deadline = self.progress_deadline_seconds or float(spec.get("progressDeadlineSeconds", 600))
        started = self.rollout_started.get((ns, meta["name"]), at)
        if complete:
            progressing = (
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{current["metadata"]["name"]}" has successfully progressed.',
            )
        elif at - started > deadline:
            progressing = ("False", "ProgressDeadlineExceeded",
                           f'ReplicaSet "{current["metadata"]["name"]}" has timed out progressing.')
        else:
            progressing = ("True", "ReplicaSetUpdated",
                           f'ReplicaSet "{current["metadata"]["name"]}" is progressing.')
        available = ready_all >= desired
        stamp = now_rfc3339(at)
        d["status"] = {
            "observedGeneration": meta["generation"],
            "replicas": len(every),
            "updatedReplicas": len(new_pods),
            "readyReplicas": ready_all,
            "availableReplicas": ready_all,
            "unavailableReplicas": max(len(every) - ready_all, 0),
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if available else "False",
                    "reason": "MinimumReplicasAvailable"
                    if available
                    else "MinimumReplicasUnavailable",
                    "message": "Deployment has minimum availability."
                    if available
                    else "Deployment does not have minimum availability.",
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp,
                },
                {
                    "type": "Progressing",
                    "status": progressing[0],
                    "reason": progressing[1],
                    "message": progressing[2],
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp,
                },
            ],
        }
        if not d["status"]["readyReplicas"]:
            del d["status"]["readyReplicas"]

    def pods_of(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for p in self.of_kind("v1", "pods", rs["metadata"]["namespace"])
                if p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]]

    def new_pod(self, rs: dict[str, Any], at: float) -> dict[str, Any]:
        template = copy.deepcopy(rs["spec"]["template"])
        suffix = hashlib.sha256(f"{rs['metadata']['name']}{self.resource_version}".encode())
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{rs['metadata']['name']}-{suffix.hexdigest()[:5]}",
                            "namespace": rs["metadata"]["namespace"],
                            "labels": template.get("metadata", {}).get("labels", {}),
                            "annotations": template.get("metadata", {}).get("annotations", {}),
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                 "name": rs["metadata"]["name"],
                                                 "uid": rs["metadata"]["uid"],
                                                 "controller": True}]},
               "spec": template["spec"], "status": {"phase": "Pending"}}
        pod = self.store(pod, "pods", at)
        self.event(pod, "Normal", "Scheduled", f"Successfully assigned {pod['metadata']['name']}"
                   " to node-1", at)
        return pod

    def ready(self, pod: dict[str, Any]) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in pod["status"].get("conditions", []))

    def update_pod(self, pod: dict[str, Any], at: float) -> None:
        # creationTimestamp has whole seconds; the emulator keeps the exact birth time.
        age = at - pod.setdefault("_born", at)
        rule = self.broken_rule(pod)
        ready = rule is None and age >= self.ready_seconds
        restarts = int(age // max(self.ready_seconds, 0.05)) if rule and rule.mode == "crash-loop" \
            else 0
        statuses = []
        for container in pod["spec"]["containers"]:
            status: dict[str, Any] = {"name": container["name"], "image": container["image"],
                                      "imageID": "", "ready": ready, "restartCount": restarts,
                                      "started": rule is None or rule.mode != "crash-loop"}
            if rule and rule.mode == "crash-loop":
                status["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                               "message": "back-off restarting failed container"}}
                status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
            else:
                status["state"] = {"running": {"startedAt": now_rfc3339(at - age)}}
            statuses.append(status)
        stamp = now_rfc3339(at)
        pod["status"] = {
            "phase": "Running", "podIP": "10.0.0.10",
            "conditions": [{"type": t, "status": "True" if ok else "False",
                            "lastTransitionTime": stamp}
                           for t, ok in (("PodScheduled", True), ("Initialized", True),
                                         ("ContainersReady", ready), ("Ready", ready))],
            "containerStatuses": statuses}
        if rule and age >= self.ready_seconds:
            if rule.mode == "crash-loop":
                self.event(pod, "Warning", "BackOff", "Back-off restarting failed container "
                           "server in pod " + pod["metadata"]["name"], at)
            else:
                self.event(pod, "Warning", "Unhealthy", "Readiness probe failed: HTTP probe "
                           "failed with statuscode: 503", at)

    def metrics_of(self, pod: dict[str, Any]) -> str:
        images = [c.get("image", "") for c in pod["spec"].get("containers", [])]
        return next((text for part, text in self.metrics.items() for i in images if part in i),
                    "# no requests served yet\n")

    def log_of(self, pod: dict[str, Any]) -> list[str]:
        rule = self.broken_rule(pod)
        return list(rule.log) if rule else ["loading model", "serving on 0.0.0.0:8080"]


# --- HTTP --------------------------------------------------------------------------------------

def public(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as the API answers it (without the emulator's bookkeeping keys)."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


class Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the state
        pass

    def do_GET(self) -> None:
        self.handle_any("GET")

    def do_PATCH(self) -> None:
        self.handle_any("PATCH")

    def do_POST(self) -> None:
        self.handle_any("POST")

    def do_DELETE(self) -> None:
        self.handle_any("DELETE")

    def send_json(self, code: int, body: Any, text: str | None = None) -> None:
        state = self.server.state
        if isinstance(body, dict) and text is None and "kind" in body:
            state.schema_errors.extend(schema_problems(body))
            for item in body.get("items", []):
                state.schema_errors.extend(schema_problems(item))
        data = (text if text is not None else json.dumps(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if text is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_status(self, code: int, message: str, causes: list[dict[str, str]] | None = None
                    ) -> None:
        status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Failure", "message": message,
                                  "reason": REASONS.get(code, "Unknown"), "code": code}
        if causes:
            status["details"] = {"causes": causes}
        self.send_json(code, status)

    def handle_any(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        state = self.server.state
        if url.path.startswith("/_emulator/"):
            self.admin(method, url.path.removeprefix("/_emulator/"), raw)
            return
        with state.lock:
            state.requests.append({"method": method, "path": url.path, "query": query,
                                   "content_type": self.headers.get("Content-Type", "")})
            fault = next((f for f in state.faults if f.count > 0
                          and (not f.method or f.method == method) and f.path in url.path), None)
            if fault:
                fault.count -= 1
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.status:
            messages = {409: "Operation cannot be fulfilled: the object has been modified; "
                             "please apply your changes to the latest version and try again",
                        500: "etcdserver: request timed out"}
            self.send_status(fault.status, messages.get(fault.status, "injected failure"))
            return
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in state.tokens:
            self.send_status(401, "Unauthorized")
            return
        try:
            with state.lock:
                state.reconcile(time.time())
                code, body, text = self.route(method, url.path, query, raw)
                state.reconcile(time.time())
        except ApiError as exc:
            self.send_status(exc.code, exc.message, exc.causes)
            return
        self.send_json(code, body, text)

    def route(self, method: str, path: str, query: dict[str, str], raw: bytes
              ) -> tuple[int, Any, str | None]:
        state, at = self.server.state, time.time()
        match = ROUTE.match(path)
        if not match:
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        api_version = "v1" if match["core"] else f"{match['group']}/{match['version']}"
        ns, plural = unquote(match["ns"] or ""), match["plural"]
        name, sub = unquote(match["name"] or ""), match["sub"]
        if method == "GET" and not name:
            items = [public(o) for o in state.of_kind(api_version, plural, ns)
                     if selector_matches(o["metadata"].get("labels", {}),
                                         query.get("labelSelector", ""))
                     and fields_match(o, query.get("fieldSelector", ""))]
            kind = items[0]["kind"] if items else \
                {"pods": "Pod", "events": "Event", "replicasets": "ReplicaSet",
                 "deployments": "Deployment"}.get(plural, plural.capitalize().rstrip("s"))
            return 200, {"apiVersion": api_version, "kind": f"{kind}List",
                         "metadata": {"resourceVersion": str(state.resource_version)},
                         "items": items}, None
        if plural == "pods" and sub and sub.startswith("proxy"):
            pod_name = name.partition(":")[0]
            pod = state.objects.get(("v1", "pods", ns, pod_name))
            if pod is None:
                raise ApiError(404, f'pods "{pod_name}" not found')
            if not state.ready(pod):
                raise ApiError(503, "error trying to reach service: connection refused")
            proxied = sub.removeprefix("proxy")
            if proxied == "/metrics":  # Prometheus text, as the model server exports it
                return 200, None, state.metrics_of(pod)
            return 200, None, json.dumps({"ready": True, "path": proxied})
        live = state.objects.get((api_version, plural, ns, name))
        if method == "GET" and sub == "log":
            if live is None:
                raise ApiError(404, f'pods "{name}" not found')
            lines = state.log_of(live)
            tail = int(query.get("tailLines", len(lines)))
            return 200, None, "".join(f"{line}\n" for line in lines[-tail:] if tail)
        if method == "GET":
            if live is None:
                raise ApiError(404, f'{plural} "{name}" not found')
            return 200, public(live), None
        if method == "PATCH":
            content_type = self.headers.get("Content-Type", "").split(";")[0]
            if content_type == "application/apply-patch+yaml":
                body, operation = yaml.safe_load(raw.decode()) or {}, "Apply"
            elif content_type in ("application/merge-patch+json",
                                  "application/strategic-merge-patch+json"):
                body, operation = json.loads(raw or b"{}"), "Update"
            else:
                raise ApiError(415, f"unsupported patch type {content_type!r}")
            if sub == "status" and plural == argo_rollouts.PLURAL and operation == "Update":
                return 200, public(argo_rollouts.patch_status(state, ns, name, body, at)), None
            if sub:
                raise ApiError(404, f"the emulator serves no {plural}/{sub} subresource")
            result = state.apply(api_version, plural, ns, name, body,
                                 query.get("fieldManager", "" if operation == "Apply"
                                           else "unknown"),
                                 query.get("force") == "true", query.get("dryRun") == "All",
                                 operation, at)
            return (200 if live else 201), public(result), None
        raise ApiError(405, f"{method} is not served by the emulator")

    def admin(self, method: str, what: str, raw: bytes) -> None:
        state = self.server.state
        data = json.loads(raw or b"{}")
        with state.lock:
            if method == "GET" and what == "state":
                body: Any = {"/".join(k): public(o) for k, o in state.objects.items()}
            elif method == "GET" and what == "requests":
                body = state.requests
            elif method == "POST" and what == "faults":
                state.faults.append(Fault(**data))
                body = {"faults": len(state.faults)}
            elif method == "POST" and what == "broken":
                state.broken.append(Broken(data["image"], data.get("mode", "never-ready"),
                                           tuple(data.get("log", Broken.log)),
                                           data.get("pods", "")))
                body = {"broken": len(state.broken)}
            elif method == "POST" and what == "metrics":
                state.metrics[data["image"]] = str(data["text"])
                body = {"metrics": len(state.metrics)}
            elif method == "POST" and what == "settings":
                for key in ("ready_seconds", "progress_deadline_seconds"):
                    if key in data:
                        setattr(state, key, data[key])
                body = {"ok": True}
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        data_out = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data_out)))
        self.end_headers()
        self.wfile.write(data_out)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: ClusterState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class KubernetesEmulator:
    """In-process handle: start on a free port, stop in the test's teardown."""

    def __init__(self, state: ClusterState | None = None, port: int = 0) -> None:
        self.state = state or ClusterState()
        self.server = EmulatorServer(self.state, port=port)
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", action="append", default=[],
                        help="a bearer token the server accepts (repeatable)")
    parser.add_argument("--ready-seconds", type=float, default=2.0)
    parser.add_argument("--broken-image", action="append", default=[], metavar="SUBSTRING",
                        help="images containing this never become ready (repeatable)")
    args = parser.parse_args(argv)
    state = ClusterState(tokens=tuple(args.token or ["emulator-token"]),
                         ready_seconds=args.ready_seconds,
                         broken=[Broken(image) for image in args.broken_image])
    server = EmulatorServer(state, args.host, args.port)
    print(f"Kubernetes API emulator on {server.url} (state: {server.url}/_emulator/state)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
