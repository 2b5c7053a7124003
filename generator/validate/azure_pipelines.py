"""azure-pipelines.yml against Azure Pipelines' own published YAML schema.

The schema is Microsoft's `service-schema.json` (draft-07), the file the Azure Pipelines VS Code
extension and its language server validate with; it is vendored unchanged as
azure-pipelines.schema.json beside this module (source, commit, version and licence in
tests/reference/README.md). It lists every built-in task by name and major version with its
inputs, so a task pinned to a version that does not exist, or an input a task does not take,
is a finding here.

Like the language server, the check reads every YAML scalar as a string (the schema spells
booleans and numbers as string patterns): `timeoutInMinutes: 15` is the string "15" to it.
"""
from __future__ import annotations

import json
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .model import Finding, ToolMissing, ToolOutcome, Workspace

NAME = "azure-pipelines-schema"
INSTALL = "pip install 'mlgen-pipelines[validate]' (or: pip install 'jsonschema>=4.20')"
SCHEMA_PATH = Path(__file__).with_name("azure-pipelines.schema.json")
MAX_FINDINGS = 20  # per file: one broken step otherwise explains itself a hundred times
Path_ = tuple[str | int, ...]


def files(ws: Workspace) -> tuple[str, ...]:
    return ws.azure_pipelines


_BOOLEAN = {"true", "false", "y", "n", "yes", "no", "on", "off"}


def _with_aliases(node: Any) -> Any:
    """Task inputs list their other accepted names under `aliases` (not a JSON Schema word):
    accept them as Azure and its language server do (`path` for DownloadPipelineArtifact's
    targetPath)."""
    if isinstance(node, list):
        return [_with_aliases(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _with_aliases(value) for key, value in node.items()}
    props = out.get("properties")
    if isinstance(props, dict):
        for spec in list(props.values()):
            for alias in spec.get("aliases", ()) if isinstance(spec, dict) else ():
                props.setdefault(alias, spec)
    return out


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = _with_aliases(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    # The top level is oneOf(pipeline, empty file); checking `pipeline` directly keeps the
    # errors about the pipeline instead of "not valid under any of the given schemas".
    schema.pop("oneOf", None)
    schema["$ref"] = "#/definitions/pipeline"
    # Scalars are read as text; where the schema wants a boolean or a number (task inputs),
    # text that YAML would read as one is one.
    checker = jsonschema.Draft7Validator.TYPE_CHECKER.redefine_many({
        "boolean": lambda _, v: isinstance(v, bool) or (isinstance(v, str)
                                                        and v.lower() in _BOOLEAN),
        "integer": lambda _, v: isinstance(v, int) or (isinstance(v, str)
                                                       and _is_number(v, integer=True)),
        "number": lambda _, v: isinstance(v, int | float) or (isinstance(v, str)
                                                              and _is_number(v)),
    })
    cls = jsonschema.validators.extend(jsonschema.Draft7Validator, type_checker=checker)
    return cls(schema)


def _is_number(text: str, integer: bool = False) -> bool:
    try:
        int(text) if integer else float(text)
    except ValueError:
        return False
    return True


def _as_strings(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    """The document with every scalar as its text, and the 1-based line of every path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key, value in node.value:
            name = str(key.value)
            out[name] = _as_strings(value, (*path, name), lines)
            lines[(*path, name)] = key.start_mark.line + 1  # point at the key, not its value
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_as_strings(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return str(node.value)


def _unexpected(error: Any) -> list[str]:
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return []
    declared = error.schema.get("properties", {})
    return sorted(key for key in error.instance if key not in declared)


def _other_kind(errors: list[Any], parent: Any) -> bool:
    """Whether an anyOf alternative describes another kind of thing than the instance: one of
    another JSON type, or, a mapping being a step, job or stage by its first key (task, bash,
    checkout, job, stage...), one that refuses that key or its value, or requires a key the
    mapping lacks."""
    if not isinstance(parent.instance, dict) or not parent.instance:
        return False
    first = next(iter(parent.instance))
    depth = len(parent.absolute_path)
    for error in errors:
        rel = list(error.absolute_path)[depth:]
        if rel == [] and error.validator == "type":  # a string where a mapping is
            return True
        if rel == [first] and error.validator in ("enum", "const", "pattern", "anyOf", "oneOf"):
            return True
        if rel == [] and error.validator == "required" and first not in error.validator_value:
            return True
        if rel == [] and first in _unexpected(error):
            return True
    return False


def _closest(error: Any) -> list[Any]:
    """The errors that explain `error`: for anyOf/oneOf, those of the alternative meant (a
    Docker@2 step with a wrong input is about Docker@2's inputs, not about every other task),
    else the one that got furthest into the document."""
    if not error.context:
        return [error]
    branches: dict[Any, list[Any]] = defaultdict(list)
    for sub in error.context:
        branches[sub.relative_schema_path[0]].append(sub)
    best = max(branches.values(),
               key=lambda errs: (not _other_kind(errs, error),
                                 max(len(e.absolute_path) for e in errs), -len(errs)))
    return [leaf for sub in best for leaf in _closest(sub)]


def _line(lines: dict[Path_, int], path: Path_) -> int:
    for cut in range(len(path), -1, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return 0


def _message(error: Any) -> str:
    if extra := _unexpected(error):
        return f"unknown key(s) {', '.join(extra)}"
    if error.validator in ("enum", "pattern", "type") and isinstance(error.instance, str):
        return f"{error.instance!r} is not allowed here"
    return str(error.message)


def check_text(path: str, text: str) -> list[Finding]:
    """Every schema problem of one pipeline file, with its line."""
    try:
        import jsonschema  # noqa: F401 (an optional extra: a missing one skips this check)
    except ImportError as exc:
        raise ToolMissing("the jsonschema package is not installed") from exc
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        return [Finding(path, NAME, "yaml", 0, f"not valid YAML: {exc}")]
    if root is None:
        return [Finding(path, NAME, "schema", 1, "the file is empty")]
    lines: dict[Path_, int] = {}
    doc = _as_strings(root, (), lines)
    findings: dict[tuple[int, str], Finding] = {}
    for error in _validator().iter_errors(doc):
        for leaf in _closest(error):
            at: Path_ = tuple(leaf.absolute_path)
            where = ".".join(str(p) for p in at) or "(top level)"
            line = _line(lines, (*at, *_unexpected(leaf)[:1]))  # the unknown key's own line
            message = f"{where}: {_message(leaf)}"
            findings.setdefault((line, message), Finding(path, NAME, "schema", line, message))
    ordered = sorted(findings.values(), key=lambda f: (f.line, f.message))
    if len(ordered) > MAX_FINDINGS:
        rest = len(ordered) - MAX_FINDINGS
        ordered = [*ordered[:MAX_FINDINGS],
                   Finding(path, NAME, "schema", ordered[MAX_FINDINGS].line,
                           f"... and {rest} more schema finding(s)")]
    return ordered


def check(ws: Workspace) -> ToolOutcome:
    findings = []
    for path in files(ws):
        findings += check_text(path, (ws.root / path).read_text(encoding="utf-8"))
    return ToolOutcome(findings, files=len(files(ws)))
