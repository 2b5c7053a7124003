"""Read mlgen.yaml into a Spec, with every error located by key path and line:column.

PyYAML's composer keeps a mark on every node; we build the plain Python value ourselves from
the node tree so that each key path remembers where it came from, then let pydantic validate
and translate its error locations back to lines.
"""
from __future__ import annotations

import difflib
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from mlgen.models.contract import SPEC_FILENAME
from pydantic import BaseModel, ValidationError

from .errors import SpecError, SpecIssue
from .spec import Spec
from .spec_azure import CONNECTION_RE, VM_IMAGE_RE, azure_issues
from .spec_types import (
    BRANCH_RE,
    DNS_LABEL_RE,
    DURATION_RE,
    FEATURE_RE,
    GITHUB_REPO_RE,
    IMAGE_REF_RE,
    LABEL_KEY_RE,
    QUANTITY_RE,
    REL_PATH_RE,
)

Loc = tuple[str | int, ...]

_PATTERN_HINTS = {
    DNS_LABEL_RE: "must be a DNS-1123 label: lowercase letters, digits and '-', starting and "
    "ending with a letter or digit, at most 63 characters",
    FEATURE_RE: "must be an identifier: letters, digits and '_', not starting with a digit, "
    "at most 63 characters",
    QUANTITY_RE: "must be a Kubernetes quantity such as 500m, 2, 512Mi or 1Gi "
    "(binary suffixes are Ki, Mi, Gi; 'Gb' or 'MB' are not valid)",
    LABEL_KEY_RE: "must be a Kubernetes label key such as 'team' or 'example.com/team'",
    REL_PATH_RE: "must be a relative path inside the repository (no leading '/', no '..', "
    "no spaces or shell characters)",
    # Patterns written inline in spec.py; matched by their text.
    DURATION_RE: "must be a duration such as 30m, 24h or 7d",
    GITHUB_REPO_RE: "must be a GitHub repository as OWNER/NAME",
    BRANCH_RE: "must be a git branch name (letters, digits, '.', '_', '-', '/'; no '..')",
    IMAGE_REF_RE: "must be an image reference such as python:3.11-slim or "
    "mirror.example.com/python:3.11-slim (no spaces)",
    r"^https?://[^\s'\"\\`$]+$": "must be an http(s) URL without spaces, quotes, backslashes, "
    "backticks or '$'",
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$": "must be an id of letters, digits, '_', '.' and '-' "
    "(no spaces), starting with a letter or digit",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "must be an environment variable name: letters, digits and "
    "'_', not starting with a digit",
    r"^[a-z][a-z0-9_-]{0,30}$": "must be a stage name: lowercase letters, digits, '_' and '-', "
    "starting with a letter, at most 31 characters",
    r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$": "must be a Kubernetes label value: "
    "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    CONNECTION_RE: "must be an Azure DevOps name: letters, digits, '_', '.', '-' and single "
    "inner spaces (no '$', quotes or brackets), starting with a letter or digit",
    VM_IMAGE_RE: "must be an agent image name such as ubuntu-24.04: letters, digits, '_', '.' "
    "and '-'",
}


def load_spec(path: Path) -> Spec:
    """Load and validate a spec file. Raises SpecError (exit 2) naming file, key path and line."""
    display = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecIssue(display, "", 0, 0,
                                   "file not found; create one with `mlgen init` or pass -C DIR")])
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecIssue(display, "", 0, 0, f"cannot read the file: {exc}")])
    return parse_spec(text, display)


def parse_spec(text: str, filename: str = SPEC_FILENAME,
               warn: Callable[[SpecIssue], None] | None = None) -> Spec:
    """Validate a spec's text. Keys that are valid but have no effect are reported to `warn`
    (default: one `warning: file:line:col: key: ...` line on stderr, once per process)."""
    data, marks = read_yaml_with_marks(text, filename)
    if not isinstance(data, dict):
        raise SpecError([SpecIssue(filename, "", 1, 1, "the top level must be a mapping of keys")])
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_issues_from_validation(exc, marks, filename)) from None
    crossed = [_issue_at(filename, loc, marks, message) for loc, message in azure_issues(spec)]
    if crossed:
        raise SpecError(crossed)
    for issue in spec_warnings(spec, marks, filename):
        (warn or _print_warning)(issue)
    return spec


_warned: set[str] = set()


def _print_warning(issue: SpecIssue) -> None:
    # Commands load the spec more than once (and the bot loads many): say each thing once.
    line = f"warning: {issue.format()}"
    if line not in _warned:
        _warned.add(line)
        print(line, file=sys.stderr)


def spec_warnings(spec: Spec, marks: dict[Loc, tuple[int, int]], filename: str) -> list[SpecIssue]:
    """Settings a spec may hold but that do nothing: today, replica counts under autoscaling.

    A warning rather than an error because a spec that sets both is common (the credit-risk
    example sets `replicas: 3` beside `autoscaling: {min: 3, ...}`) and renders fine.
    """
    scaling = spec.serve.autoscaling
    if not scaling.enabled:
        return []
    owner = (f"the HorizontalPodAutoscaler sets the pod count between serve.autoscaling.min "
             f"({scaling.min}) and max ({scaling.max})")
    found: list[SpecIssue] = []
    if "replicas" in spec.serve.model_fields_set:
        found.append(_issue_at(filename, ("serve", "replicas"), marks,
                               f"ignored while autoscaling is on: {owner}; remove replicas, or "
                               "set serve.autoscaling.enabled: false to fix the count"))
    for env, overlay in spec.kubernetes.overlays.items():
        if overlay.replicas is not None:
            found.append(_issue_at(filename, ("kubernetes", "overlays", env, "replicas"), marks,
                                   f"ignored while autoscaling is on: {owner}; set this "
                                   f"overlay's autoscaling min and max instead"))
    return found


def _issue_at(filename: str, loc: Loc, marks: dict[Loc, tuple[int, int]],
              message: str) -> SpecIssue:
    line, column = marks.get(loc + ("<key>",)) or _nearest(loc, marks)
    return SpecIssue(filename, _dotted(loc), line, column, message)


def read_yaml_with_marks(text: str, filename: str) -> tuple[Any, dict[Loc, tuple[int, int]]]:
    """Parse YAML safely; return the value and a map key path -> (line, column), 1-based.

    For a mapping entry the path maps to the position of its value, and path + ("<key>",) to
    the position of the key itself.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError([SpecIssue(filename, "", line, col, f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([SpecIssue(filename, "", 0, 0, f"invalid YAML: {exc}")]) from None
    if root is None:
        raise SpecError([SpecIssue(filename, "", 1, 1, "the file is empty")])
    marks: dict[Loc, tuple[int, int]] = {}
    constructor = _Loader("")
    value = _build(root, (), marks, constructor, filename)
    return value, marks


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _build(node: yaml.Node, loc: Loc, marks: dict[Loc, tuple[int, int]],
           constructor: Any, filename: str) -> Any:
    marks[loc] = _pos(node)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        # e.g. `!!python/object/apply:os.system [id]`: refuse the tag instead of reading a list.
        _fail(filename, loc, node, f"unsupported YAML tag '{node.tag}': only plain mappings, "
              "lists and scalars are allowed")
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                _fail(filename, loc, key_node, "YAML merge keys ('<<') are not supported; "
                      "write the keys out")
            key = _build(key_node, loc + ("<key>",), {}, constructor, filename)
            if not isinstance(key, (str, int, float, bool)):
                _fail(filename, loc, key_node, "mapping keys must be plain scalars")
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                _fail(filename, loc + (key,), key_node, f"duplicate key '{key}'")
            marks[loc + (key, "<key>")] = _pos(key_node)
            result[key] = _build(value_node, loc + (key,), marks, constructor, filename)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, loc + (i,), marks, constructor, filename)
                for i, item in enumerate(node.value)]
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        _fail(filename, loc, node, f"unsupported YAML value: {exc.problem}")
    raise AssertionError("unreachable")  # pragma: no cover


def _fail(filename: str, loc: Loc, node: yaml.Node, message: str) -> typing.NoReturn:
    line, col = _pos(node)
    raise SpecError([SpecIssue(filename, _dotted(loc), line, col, message)])


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if part in ("<key>", "[key]"):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _issues_from_validation(exc: ValidationError, marks: dict[Loc, tuple[int, int]],
                            filename: str) -> list[SpecIssue]:
    issues: list[SpecIssue] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(
            p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        kind = error["type"]
        message = _message(error)
        if kind == "extra_forbidden":
            key = str(loc[-1]) if loc else ""
            allowed = _allowed_keys(loc[:-1])
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else (
                f"; allowed keys: {', '.join(sorted(allowed))}" if allowed else "")
            message = f"unknown key '{key}'{hint}"
            position = marks.get(loc + ("<key>",)) or _nearest(loc, marks)
        elif "[key]" in loc:
            position = marks.get(loc[: loc.index("[key]")] + ("<key>",)) or _nearest(loc, marks)
            message = f"invalid key: {message}"
        else:
            position = marks.get(loc) or _nearest(loc, marks)
        issues.append(SpecIssue(filename, _dotted(loc), position[0], position[1], message))
    issues.sort(key=lambda i: (i.line, i.column, i.path))
    return issues


def _nearest(loc: Loc, marks: dict[Loc, tuple[int, int]]) -> tuple[int, int]:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in marks:
            return marks[loc[:cut]]
    return (0, 0)


def _message(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get(ctx.get("pattern", ""))
        value = error.get("input")
        shown = repr(value) if isinstance(value, str) and len(value) <= 80 else "the value"
        return f"{shown} {hint}" if hint else f"{shown} does not have the expected form"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}; got {error.get('input')!r}"[:300]
    msg = str(error["msg"])
    msg = msg.removeprefix("Value error, ")
    return msg


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys a mapping at `loc` accepts, for 'did you mean' hints."""
    current: Any = Spec
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items()
                          if part in (n, f.alias)), None)
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is tuple:
            current = typing.get_args(current)[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []
