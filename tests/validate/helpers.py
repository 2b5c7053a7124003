"""Shared helpers for the validate tests: build a Workspace over files written to tmp_path."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlgen.validate.locate import find_executable, find_node_module


def need(*executables: str, node_module: str | None = None) -> None:
    """Skip (a failure in CI) when a tool is missing, saying how to install it."""
    missing = [e for e in executables if find_executable(e) is None]
    if node_module and find_node_module(node_module) is None:
        missing.append(f"npm package {node_module}")
    if missing:
        hints = sorted({_SYSTEM.get(m, "bash scripts/install-tools.sh") for m in missing})
        pytest.skip(f"{', '.join(missing)} not installed: {'; '.join(hints)}")


# Tools scripts/install-tools.sh cannot install (not on PyPI or npm): the system's packages.
_SYSTEM = {"promtool": "apt-get install prometheus (what .ci/run does)"}


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
