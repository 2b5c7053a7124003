"""Argo CD Applications (k8s/argocd/ENV.yaml) against the Application CRD's own schema.

kubernetes-validate ships no schemas for custom resources, so mlgen vendors the
openAPIV3Schema of Argo CD's `manifests/crds/application-crd.yaml` (argocd-application.schema
.json beside this module; source, commit and licence in its `$comment` and in
docs/gitops.md) and checks each Application with jsonschema, strictly as `kubectl apply
--validate=strict` would: a field the CRD does not declare is an error, not silently pruned.
On top of the schema, the rules Argo CD's controller applies before it accepts an Application
(one source, a destination by server or by name).
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .model import Finding, ToolMissing, ToolOutcome, Workspace

NAME = "argocd-schema"
INSTALL = "pip install 'mlgen-pipelines[validate]' (or: pip install 'jsonschema>=4.20')"
SCHEMA_PATH = Path(__file__).with_name("argocd-application.schema.json")
API_VERSION = "argoproj.io/v1alpha1"
_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# The CRD says only `metadata: {type: object}`; the API server checks ObjectMeta itself.
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": _SUBDOMAIN, "maxLength": 253},
        "namespace": {"type": "string", "pattern": _LABEL, "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
}


def files(ws: Workspace) -> tuple[str, ...]:
    return ws.argocd_applications


def _strict(node: Any) -> Any:
    """The CRD's structural schema as plain JSON Schema: int-or-string spelled out, and
    undeclared fields refused wherever the CRD does not preserve unknown fields."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()
           if not key.startswith("x-kubernetes-") and key != "$comment"}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@lru_cache(maxsize=1)
def application_schema() -> dict[str, Any]:
    raw = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    schema: dict[str, Any] = _strict(raw)
    schema["properties"] = {**schema["properties"], "metadata": copy.deepcopy(_METADATA),
                            "apiVersion": {"const": API_VERSION}, "kind": {"const": "Application"}}
    schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind"})
    return schema


def _line_of(root: yaml.Node | None, path: tuple[Any, ...]) -> int:
    """1-based line of the deepest node on `path` that exists (0 when unknown)."""
    node, line = root, 0
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    if line == 0 and root is not None:
        line = root.start_mark.line + 1
    return line


def _argocd_rules(doc: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    spec: dict[str, Any] = doc["spec"] if isinstance(doc.get("spec"), dict) else {}
    problems: list[tuple[tuple[str, ...], str]] = []
    sources = [key for key in ("source", "sources", "sourceHydrator") if key in spec]
    if len(sources) != 1:
        has = ", ".join(sources) or "none"
        message = f"an Application needs exactly one of source, sources or sourceHydrator " \
                  f"(has: {has})"
        problems.append((("spec",), message))
    dest = spec.get("destination")
    if isinstance(dest, dict) and ("server" in dest) == ("name" in dest):
        problems.append((("spec", "destination"),
                         "destination needs exactly one of server or name"))
    return problems


def check_text(path: str, text: str) -> list[Finding]:
    """Every problem with the Application(s) in `text` (one YAML stream)."""
    try:
        import jsonschema
    except ImportError as exc:  # an optional extra: report the tool as skipped
        raise ToolMissing("the jsonschema package is not installed") from exc
    try:
        nodes = list(yaml.compose_all(text))
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        return [Finding(path, NAME, "yaml", 0, f"not valid YAML: {exc}")]
    validator = jsonschema.Draft7Validator(application_schema())
    findings = []
    for node, doc in zip(nodes, docs, strict=True):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            findings.append(Finding(path, NAME, "schema", _line_of(node, ()),
                                    "an Application must be a mapping"))
            continue
        name = doc.get("metadata", {}).get("name", "?") if isinstance(doc.get("metadata"),
                                                                       dict) else "?"
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            at = tuple(error.absolute_path)
            if error.validator == "additionalProperties":  # point at the field, not its parent
                at += tuple(_unexpected(error)[:1])
            line = _line_of(node, at)
            findings.append(Finding(path, NAME, "schema", line,
                                    f"Application {name}: {where}: {_message(error)}"))
        for where_path, message in _argocd_rules(doc):
            findings.append(Finding(path, NAME, "argocd", _line_of(node, where_path),
                                    f"Application {name}: {message}"))
    return findings


def _unexpected(error: Any) -> list[str]:
    """The undeclared fields an additionalProperties error is about."""
    declared = error.schema.get("properties", {})
    return sorted(key for key in error.instance if key not in declared)


def _message(error: Any) -> str:
    if error.validator == "additionalProperties":
        extra = _unexpected(error)
        return f"unknown field(s) {', '.join(extra)}" if extra else str(error.message)
    return str(error.message)


def check(ws: Workspace) -> ToolOutcome:
    findings = []
    for path in files(ws):
        text = (ws.root / path).read_text(encoding="utf-8")
        findings += check_text(path, text)
    return ToolOutcome(findings, files=len(files(ws)))
