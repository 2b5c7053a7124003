"""The layout's rules, read from the imports of every module (function-level and
TYPE_CHECKING imports included), so a shortcut fails here instead of in review:

- the SDKs (PyGithub, python-jenkins, docker, kubernetes) are imported only in
  `mlgen.integrations`, so their objects cannot leak into the rest;
- `mlgen.models` (the runtime inside the model image) never imports publishing, sync, the
  integrations or the CLI: drift returns a decision and `mlgen.commands.drift` acts on it;
- commands never import `mlgen.cli` (the shared helpers live in `mlgen.project`), and nothing
  but the CLI imports a command;
- `mlgen.models.contract` is stdlib only, so every side can import it.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.helpers import REPO

ROOT = REPO
SDKS = {"github", "jenkins", "docker", "kubernetes"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    head = ["mlgen"] if parts[0] == "generator" else ["mlgen", "models"]
    return ".".join(head + parts[1:])


def _imports(path: Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # `from pkg import submodule` imports the submodule
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): _imports(p)
           for folder in ("generator", "models") for p in sorted((ROOT / folder).rglob("*.py"))}


def _offenders(where: str, forbidden: tuple[str, ...], allow: tuple[str, ...] = ()) -> list[str]:
    out = []
    for module, imports in MODULES.items():
        if not (module == where or module.startswith(where + ".")) or module.startswith(allow):
            continue
        for imported in sorted(imports):
            if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                out.append(f"{module} imports {imported}")
    return out


def test_the_layout_is_what_these_rules_read() -> None:
    for expected in ("mlgen.cli", "mlgen.project", "mlgen.sync.plan", "mlgen.publish.retrain",
                     "mlgen.integrations.github.client", "mlgen.models.contract",
                     "mlgen.commands.drift", "mlgen.models.drift.actions"):
        assert expected in MODULES, expected


def test_sdks_are_imported_only_in_integrations() -> None:
    assert _offenders("mlgen", tuple(SDKS), allow=("mlgen.integrations",)) == []


def test_the_model_runtime_never_imports_publishing_sync_or_the_cli() -> None:
    forbidden = ("mlgen.publish", "mlgen.sync", "mlgen.integrations", "mlgen.commands",
                 "mlgen.cli", *SDKS)
    assert _offenders("mlgen.models", forbidden) == []


def test_commands_do_not_import_the_cli_and_only_the_cli_imports_commands() -> None:
    assert _offenders("mlgen.commands", ("mlgen.cli",)) == []
    assert _offenders("mlgen", ("mlgen.commands",), allow=("mlgen.commands", "mlgen.cli")) == []


def test_the_runtime_contract_is_stdlib_only() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    imports = MODULES["mlgen.models.contract"]
    assert {i.split(".")[0] for i in imports} <= stdlib, imports


def test_no_module_is_over_400_lines() -> None:
    long = [f"{p.relative_to(ROOT)}: {n} lines" for folder in ("generator", "models")
            for p in sorted((ROOT / folder).rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400]
    assert long == [], "split these by responsibility: " + ", ".join(long)


def test_runtime_checks_raise_instead_of_assert() -> None:
    """`python -O` strips assert statements, and a check that vanishes is no check."""
    found = [f"{p.relative_to(ROOT)}:{node.lineno}" for folder in ("generator", "models")
             for p in sorted((ROOT / folder).rglob("*.py"))
             for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
             if isinstance(node, ast.Assert)]
    assert found == [], "raise an error instead: " + ", ".join(found)
