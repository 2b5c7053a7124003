"""The one module that imports the `kubernetes` client: connect, then plain JSON requests.

Every call goes through `Cluster.request`, which builds the request with the client's own
ApiClient (so kubeconfig, in-cluster service accounts, exec plugins, TLS and proxies all work
as the client implements them) and hands back plain dicts, the objects as the API server
wrote them. Plain dicts, not the client's generated models, because server-side apply works
on whole manifests of any kind (CRDs included) and the deploy logic compares them field by
field.

Retries live here and only here: 409 (an optimistic-concurrency conflict), 429, 5xx and
transport errors (timeouts, refused or reset connections) are retried with a bounded
exponential backoff; then `KubernetesApiError` names the object and quotes the API's answer.
A 409 that is a server-side-apply field conflict is not retried: asking again cannot help.

The bearer token must never reach a log: we never turn on the client's `debug` (it makes
http.client print every header, Authorization included), and our own log lines name only the
method, the path and the status.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import MlgenError, UsageError, require_extra

log = logging.getLogger("mlgen.kubernetes")

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
# Kinds the rendered overlays contain, with their REST names. Anything else falls back to
# the lower-case kind plus "s", which is what the API server uses for most kinds.
PLURALS = {
    "NetworkPolicy": "networkpolicies",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "Ingress": "ingresses",
    "Endpoints": "endpoints",
}
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
                            "StorageClass", "CustomResourceDefinition", "PersistentVolume"})
RETRYABLE = frozenset({409, 429, 500, 502, 503, 504})


class KubernetesApiError(MlgenError):
    """The API server refused, or kept failing, a request; names the object and the answer."""

    def __init__(self, what: str, status: int, message: str, reason: str = "") -> None:
        self.what, self.status, self.reason, self.message = what, status, reason, message
        code = f"HTTP {status}" if status else "no answer"
        super().__init__(f"{what}: {code}{' ' + reason if reason else ''}: {message}")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_delay: float = 0.25  # seconds, doubled after each failed attempt
    max_delay: float = 4.0
    request_timeout: float = 30.0  # seconds per request (connect and read)


def plural(kind: str) -> str:
    return PLURALS.get(kind, kind.lower() + "s")


def object_path(api_version: str, kind: str, namespace: str | None, name: str | None = None,
                subresource: str | None = None) -> str:
    """The REST path of a kind (a collection when name is None), as the API server routes it."""
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    scope = "" if kind in CLUSTER_SCOPED or namespace is None \
        else f"/namespaces/{quote(namespace, safe='')}"
    path = f"{root}{scope}/{plural(kind)}"
    if name is not None:
        path += f"/{quote(name, safe='')}"
    if subresource:
        path += f"/{subresource}"
    return path


def describe(obj: dict[str, Any]) -> str:
    """`Deployment ml-credit-risk/credit-risk`: how errors and progress name an object."""
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', '?')} {where}{meta.get('name', '?')}"


def _status_message(body: str) -> tuple[str, str, list[dict[str, Any]]]:
    """(message, reason, causes) from a `Status` answer; the raw text when it is not one."""
    try:
        status = json.loads(body)
    except ValueError:
        return body.strip()[:500] or "(empty answer)", "", []
    if not isinstance(status, dict):
        return body.strip()[:500], "", []
    causes = (status.get("details") or {}).get("causes") or []
    return str(status.get("message", body.strip()[:500])), str(status.get("reason", "")), causes


class Cluster:
    """One API server, reached through the kubeconfig (or the pod's service account)."""

    def __init__(self, context: str | None = None, kubeconfig: str | None = None,
                 retry: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        require_extra("kubernetes", "kubernetes", "talking to a Kubernetes cluster")
        from kubernetes import client, config

        configuration = client.Configuration()
        # The client reads KUBECONFIG once, at import; read it now, so that a process that
        # calls mlgen more than once (tests, a bot) talks to the cluster it names today.
        config_file = kubeconfig or os.environ.get("KUBECONFIG") or None
        try:
            config.load_kube_config(config_file=config_file, context=context,
                                    client_configuration=configuration, persist_config=False)
            self.context = context or self._current_context(config_file)
        except (config.ConfigException, FileNotFoundError) as exc:
            if context or kubeconfig:
                raise UsageError(f"kubeconfig: {exc}") from exc
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException as in_cluster:
                raise UsageError(f"no Kubernetes credentials: no usable kubeconfig ({exc}) and "
                                 f"not in a pod ({in_cluster}); set KUBECONFIG or --context") \
                    from in_cluster
            self.context = "in-cluster"
        # Our retries, not urllib3's: a PATCH must not be re-sent behind our back, and each
        # attempt is logged and counted against one budget.
        configuration.retries = False
        self.server = configuration.host
        self.api = client.ApiClient(configuration)
        self.retry = retry
        self._sleep = sleep

    @staticmethod
    def _current_context(kubeconfig: str | None) -> str:
        from kubernetes import config

        _, current = config.list_kube_config_contexts(config_file=kubeconfig)
        return str(current.get("name", "")) if current else ""

    def request(self, method: str, path: str, what: str, *, query: dict[str, str] | None = None,
                body: Any = None, content_type: str | None = None,
                expect_json: bool = True, missing_ok: bool = False) -> Any:
        """One API call with retries; the parsed JSON (or text); None for a 404 when
        missing_ok."""
        import urllib3

        headers = {"Accept": "application/json" if expect_json else "*/*"}
        if content_type:
            headers["Content-Type"] = content_type
        delay = self.retry.first_delay
        last_status, last_message, last_reason = 0, "", ""
        for attempt in range(1, self.retry.attempts + 1):
            params = self.api.param_serialize(
                method, path, query_params=list((query or {}).items()), header_params=dict(headers),
                body=body, auth_settings=["BearerToken"])
            try:
                response = self.api.call_api(*params, _request_timeout=self.retry.request_timeout)
                response.read()
            except urllib3.exceptions.HTTPError as exc:
                last_status, last_reason = 0, ""
                last_message = f"{type(exc).__name__} after {self.retry.request_timeout:g} s" \
                    if "timeout" in type(exc).__name__.lower() or "Timeout" in str(exc) \
                    else f"{type(exc).__name__}: {exc}"
                log.debug("%s %s: attempt %d: %s", method, path, attempt, last_message)
            else:
                text = response.data.decode("utf-8", "replace") if response.data else ""
                log.debug("%s %s: attempt %d: HTTP %d", method, path, attempt, response.status)
                if response.status < 300:
                    if not expect_json:
                        return text
                    return json.loads(text) if text else {}
                if response.status == 404 and missing_ok:
                    return None
                last_status = response.status
                last_message, last_reason, causes = _status_message(text)
                # StatusCause calls its type "reason" on the wire.
                field_conflict = any(c.get("reason") == "FieldManagerConflict" for c in causes)
                if response.status not in RETRYABLE or field_conflict:
                    if field_conflict:
                        last_message += " (another field manager owns these fields; rerun " \
                                        "with --force-conflicts to take them over)"
                    raise KubernetesApiError(what, last_status, last_message, last_reason)
                retry_after = response.headers.get("Retry-After") if response.headers else None
                if retry_after and retry_after.isdigit():
                    delay = max(delay, float(retry_after))
            if attempt < self.retry.attempts:
                self._sleep(min(delay, self.retry.max_delay))
                delay *= 2
        raise KubernetesApiError(f"{what} (gave up after {self.retry.attempts} attempts)",
                                 last_status, last_message, last_reason)

    # The calls the deploy and status commands make, named after what they do.

    def get(self, api_version: str, kind: str, namespace: str | None,
            name: str) -> dict[str, Any] | None:
        path = object_path(api_version, kind, namespace, name)
        found = self.request("GET", path, f"reading {kind} {namespace}/{name}", missing_ok=True)
        return found if isinstance(found, dict) else None

    def list(self, api_version: str, kind: str, namespace: str, *, labels: str = "",
             fields: str = "") -> list[dict[str, Any]]:
        query = {k: v for k, v in (("labelSelector", labels), ("fieldSelector", fields)) if v}
        found = self.request("GET", object_path(api_version, kind, namespace),
                             f"listing {plural(kind)} in {namespace}", query=query)
        return list((found or {}).get("items", []))

    def apply(self, obj: dict[str, Any], manager: str, *, force: bool = False,
              dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply: the server merges, records `manager` in managedFields, answers
        with the object as it now is (or would be, with dry_run)."""
        meta = obj.get("metadata", {})
        path = object_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        query = {"fieldManager": manager}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        answer = self.request("PATCH", path, f"applying {describe(obj)}", query=query, body=obj,
                              content_type=APPLY_PATCH)
        return dict(answer)

    def merge_patch(self, api_version: str, kind: str, namespace: str, name: str,
                    patch: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386: null removes a field), of the object or of one of its
        subresources (`status`): how kubectl plugins such as Argo Rollouts' change a field
        another controller owns, without server-side apply's ownership."""
        path = object_path(api_version, kind, namespace, name, subresource)
        what = f"patching {kind} {namespace}/{name}" + (f" {subresource}" if subresource else "")
        return dict(self.request("PATCH", path, what, body=patch, content_type=MERGE_PATCH))

    def pod_log(self, namespace: str, pod: str, container: str | None, tail_lines: int) -> str:
        query = {"tailLines": str(tail_lines)}
        if container:
            query["container"] = container
        path = object_path("v1", "Pod", namespace, pod, "log")
        try:
            text = self.request("GET", path, f"reading the log of pod {namespace}/{pod}",
                                query=query, expect_json=False)
        except KubernetesApiError as exc:  # a container that never started has no log
            return f"(no log: {exc.message})"
        return str(text or "")

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str:
        """GET `path` on the pod through the API server's pod proxy (no port-forward needed)."""
        proxy = object_path("v1", "Pod", namespace, f"{pod}:{port}", "proxy") + path
        return str(self.request("GET", proxy, f"GET {path} on pod {namespace}/{pod}",
                                expect_json=False))
