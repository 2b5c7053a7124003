"""`mlgen migrate`: rewrite mlgen.yaml from one apiVersion to a newer one, keeping the user's
comments, key order, quoting and indentation (ruamel.yaml round-trip).

A migration is a small function that edits the round-trip document in place, registered in
MIGRATIONS under the apiVersion it starts from. Migrations chain: v1 -> v2 -> v3. Helpers
below (`rename_key`, `mapping_at`) keep comments attached to the keys they move.

mlgen has one apiVersion so far (mlgen/v1), so the registry ships empty; tests register
test-only versions to exercise the whole path through the CLI.
"""
from __future__ import annotations

import difflib
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlgen.models.contract import SPEC_FILENAME

from .errors import UsageError

Document = Any  # ruamel.yaml.comments.CommentedMap


@dataclass(frozen=True)
class Migration:
    from_version: str
    to_version: str
    summary: str
    apply: Callable[[Document], None]


MIGRATIONS: dict[str, Migration] = {}


def register(migration: Migration) -> Migration:
    MIGRATIONS[migration.from_version] = migration
    return migration


@dataclass(frozen=True)
class MigrationResult:
    text: str
    from_version: str
    to_version: str
    steps: tuple[Migration, ...]

    @property
    def changed(self) -> bool:
        return bool(self.steps)


def latest_version() -> str:
    from .spec import API_VERSION

    return API_VERSION


def plan_steps(current: str, target: str,
               registry: dict[str, Migration] | None = None) -> list[Migration]:
    registry = MIGRATIONS if registry is None else registry
    steps: list[Migration] = []
    version = current
    while version != target:
        step = registry.get(version)
        if step is None or len(steps) > len(registry):
            known = ", ".join(f"{m.from_version} -> {m.to_version}" for m in registry.values())
            raise UsageError(f"no migration path from apiVersion {current!r} to {target!r} "
                             f"(known migrations: {known or 'none'})")
        steps.append(step)
        version = step.to_version
    return steps


def migrate_text(text: str, target: str | None = None, filename: str = SPEC_FILENAME,
                 registry: dict[str, Migration] | None = None) -> MigrationResult:
    """Migrate spec text to `target` (default: the newest apiVersion this mlgen knows)."""
    target = target or latest_version()
    yaml = _round_trip_yaml(text)
    doc = _load(yaml, text, filename)
    current = doc.get("apiVersion")
    if not isinstance(current, str):
        raise UsageError(f"{filename}: apiVersion: missing or not a string; add "
                         f"`apiVersion: {latest_version()}` at the top")
    steps = plan_steps(current, target, registry)
    if not steps:
        return MigrationResult(text, current, target, ())
    for step in steps:
        step.apply(doc)
        doc["apiVersion"] = step.to_version
    out = io.StringIO()
    yaml.dump(doc, out)
    return MigrationResult(out.getvalue(), current, target, tuple(steps))


def _load(yaml: Any, text: str, filename: str) -> Document:
    from ruamel.yaml.error import YAMLError

    try:
        doc = yaml.load(text)
    except YAMLError as exc:
        raise UsageError(f"{filename}: invalid YAML: {exc}") from None
    if not hasattr(doc, "ca"):
        raise UsageError(f"{filename}: the top level must be a mapping of keys")
    return doc


# Indentation styles seen in real specs: (mapping, sequence, dash offset).
_INDENTS = ((2, 2, 0), (2, 4, 2), (4, 4, 0), (4, 6, 4), (4, 4, 2), (2, 3, 1), (3, 3, 0))


def _round_trip_yaml(text: str) -> Any:
    """A ruamel YAML that dumps the unmodified `text` as close to byte-identical as it can:
    ruamel detects neither indentation nor how nulls were spelled, so try the usual styles
    and keep the best match."""
    from ruamel.yaml import YAML

    best: tuple[int, Any] | None = None
    for (mapping, sequence, offset), null in itertools.product(_INDENTS, ("null", "~", "")):
        yaml = YAML(typ="rt")
        yaml.representer.add_representer(type(None), _null_representer(null))
        yaml.preserve_quotes = True
        yaml.width = 4096  # never re-wrap a long line
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        yaml.explicit_start = text.lstrip().startswith("---")
        try:
            out = io.StringIO()
            yaml.dump(yaml.load(text), out)
        except Exception:  # noqa: BLE001 - an invalid file is reported by _load with its line
            return yaml
        differing = sum(1 for line in difflib.ndiff(text.splitlines(), out.getvalue().splitlines())
                        if line[:1] in "+-")
        if differing == 0:
            return yaml
        if best is None or differing < best[0]:
            best = (differing, yaml)
    if best is None:
        raise RuntimeError("no YAML round-trip configuration was tried")
    return best[1]


def _null_representer(spelling: str) -> Callable[[Any, Any], Any]:
    def represent(representer: Any, _value: Any) -> Any:
        return representer.represent_scalar("tag:yaml.org,2002:null", spelling)
    return represent


# ---- helpers for migrations -------------------------------------------------------------------


def mapping_at(doc: Document, dotted: str) -> Document | None:
    """The mapping at a dotted key path ("serve.autoscaling"), or None when absent."""
    node = doc
    for key in [k for k in dotted.split(".") if k]:
        if not hasattr(node, "get") or key not in node:
            return None
        node = node[key]
    return node if hasattr(node, "ca") else None


def rename_key(mapping: Document, old: str, new: str) -> bool:
    """Rename a key in place, keeping its position, its value's quoting and its comments."""
    if mapping is None or old not in mapping:
        return False
    if new in mapping:
        raise UsageError(f"cannot rename '{old}' to '{new}': both are set; keep one")
    position = list(mapping.keys()).index(old)
    value = mapping[old]
    comment = mapping.ca.items.pop(old, None)
    del mapping[old]
    mapping.insert(position, new, value)
    if comment is not None:
        mapping.ca.items[new] = comment
    return True
