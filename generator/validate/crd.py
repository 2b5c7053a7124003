"""Custom resources against their CRD's own openAPIV3Schema, shared by the Argo CD
Application and Argo Rollouts Rollout checks.

kubernetes-validate ships no schemas for custom resources, so mlgen vendors the CRDs'
schemas beside this module and checks each object with jsonschema, strictly as `kubectl apply
--validate=strict` would: a field the CRD does not declare is an error, not silently pruned.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import yaml

from .model import Finding, ToolMissing, ToolOutcome, Workspace

_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# The CRDs say only `metadata: {type: object}`; the API server checks ObjectMeta itself.
METADATA = {
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
# Extra rules a controller applies on top of the schema: (path, message) per problem.
Rules = Callable[[dict[str, Any]], list[tuple[tuple[Any, ...], str]]]


def strict(node: Any) -> Any:
    """A CRD's structural schema as plain JSON Schema: int-or-string spelled out, and
    undeclared fields refused wherever the CRD does not preserve unknown fields."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()
           if not key.startswith("x-kubernetes-") and key != "$comment"}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def object_schema(raw: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """The whole object's schema: the CRD's, with ObjectMeta, apiVersion and kind pinned."""
    schema: dict[str, Any] = strict(raw)
    schema["properties"] = {**schema["properties"], "metadata": copy.deepcopy(METADATA),
                            "apiVersion": {"const": api_version}, "kind": {"const": kind}}
    schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind"})
    return schema


def line_of(root: yaml.Node | None, path: tuple[Any, ...]) -> int:
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


def check_stream(path: str, text: str, tool: str, kind: str, schema: dict[str, Any],
                 rules: Rules, rule_code: str) -> list[Finding]:
    """Every problem with the `kind` objects in `text` (one YAML stream)."""
    try:
        import jsonschema
    except ImportError as exc:  # an optional extra: report the tool as skipped
        raise ToolMissing("the jsonschema package is not installed") from exc
    try:
        nodes = list(yaml.compose_all(text))
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        return [Finding(path, tool, "yaml", 0, f"not valid YAML: {exc}")]
    validator = jsonschema.Draft7Validator(schema)
    findings = []
    for node, doc in zip(nodes, docs, strict=True):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            findings.append(Finding(path, tool, "schema", line_of(node, ()),
                                    f"an {kind} must be a mapping" if kind[0] in "AEIOU"
                                    else f"a {kind} must be a mapping"))
            continue
        meta = doc.get("metadata")
        name = meta.get("name", "?") if isinstance(meta, dict) else "?"
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            at = tuple(error.absolute_path)
            if error.validator == "additionalProperties":  # point at the field, not its parent
                at += tuple(_unexpected(error)[:1])
            findings.append(Finding(path, tool, "schema", line_of(node, at),
                                    f"{kind} {name}: {where}: {_message(error)}"))
        for where_path, message in rules(doc):
            findings.append(Finding(path, tool, rule_code, line_of(node, where_path),
                                    f"{kind} {name}: {message}"))
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


def check_files(ws: Workspace, paths: tuple[str, ...],
                check_text: Callable[[str, str], list[Finding]]) -> ToolOutcome:
    """A CRD check's outcome over the workspace files it owns."""
    findings: list[Finding] = []
    for path in paths:
        findings += check_text(path, (ws.root / path).read_text(encoding="utf-8"))
    return ToolOutcome(findings, files=len(paths))
