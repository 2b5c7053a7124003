"""MkDocs hook: the spec reference page, generated from `mlgen schema` at build time.

The page is never written by hand, so it cannot drift from the spec: every key, its type, its
default and its description come from the pydantic models in generator/spec.py.
"""
from __future__ import annotations

import json
from typing import Any

from mkdocs.structure.files import File, Files

PAGE = "reference/spec.md"


def _ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type(node: dict[str, Any]) -> str:
    if name := _ref_name(node):
        return f"[{name}](#{name.lower()})"
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "anyOf" in node:
        kinds = [_type(n) for n in node["anyOf"]]
        return " or ".join(k for k in kinds if k != "null") + (
            " or null" if "null" in kinds else "")
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_type(node['additionalProperties'])}"
    return str(kind)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(node: dict[str, Any]) -> list[str]:
    required = set(node.get("required", []))
    rows = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key, prop in sorted(node.get("properties", {}).items()):
        default = ("required" if key in required else
                   f"`{json.dumps(prop['default'])}`" if "default" in prop else "")
        description = prop.get("description") or ""
        if not description and (name := _ref_name(prop)):
            description = f"see [{name}](#{name.lower()})"
        rows.append(f"| `{key}` | {_cell(_type(prop))} | {_cell(default)} | {_cell(description)} |")
    return rows


def _sections(schema: dict[str, Any], title: str) -> list[str]:
    lines = [f"## {title}", "", schema.get("description", ""), "", *_table(schema)]
    for name, node in sorted(schema.get("$defs", {}).items()):
        lines += ["", f"## {name}", ""]
        if node.get("description"):
            lines += [_cell(node["description"]), ""]
        lines += _table(node) if node.get("properties") else [f"Type: {_type(node)}"]
    return lines


def spec_reference_markdown(schema: dict[str, Any], root: dict[str, Any] | None = None) -> str:
    lines = ["# Spec reference", "",
             ("Generated from `mlgen schema` when these docs are built; the same descriptions "
              "appear in editors that read `.mlgen/mlgen.schema.json`."), "",
             *_sections(schema, "mlgen.yaml")]
    if root is not None:
        # The root spec's definitions are named Root*, so their anchors never meet the
        # model spec's.
        lines += ["", "# Monorepo root spec", "",
                  ("Generated from `mlgen schema --root`: the root `mlgen.yaml` of a "
                   "[monorepo](../monorepo.md), read by editors from "
                   "`.mlgen/mlgen-root.schema.json`."), "",
                  *_sections(root, "Root mlgen.yaml")]
    return "\n".join(lines) + "\n"


def on_files(files: Files, config: Any) -> Files:
    from mlgen.commands.schema import root_json_schema, spec_json_schema

    content = spec_reference_markdown(spec_json_schema(), root_json_schema())
    files.append(File.generated(config, PAGE, content=content))
    return files
