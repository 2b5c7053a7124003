"""Regenerate every example repository from its mlgen.yaml: `make golden`.

The examples are the golden files: tests/golden/test_examples.py renders each spec afresh
and compares the whole tree byte for byte. Everything but mlgen.yaml is derived, so this
deletes the rest of each example and writes it again (scaffold, pipeline files, lock).
A monorepo example (a root mlgen.yaml with `models:`) keeps every model's mlgen.yaml too.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from mlgen.commands.init import create_monorepo, create_project
from mlgen.monorepo import is_monorepo, load_monorepo_folders

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPEC = "mlgen.yaml"


def example_dirs() -> list[Path]:
    return sorted(p.parent for p in EXAMPLES.glob(f"*/{SPEC}"))


def spec_files(example: Path) -> list[str]:
    """The example's hand-written specs: mlgen.yaml, and each model's in a monorepo."""
    if not is_monorepo(example):
        return [SPEC]
    return [SPEC, *(f"{folder}/{SPEC}" for folder in load_monorepo_folders(example))]


def copy_specs(example: Path, target: Path) -> None:
    for name in spec_files(example):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(example / name, target / name)


def build(example: Path) -> list[str]:
    """Write everything derived from the specs in `example` (which hold only the specs)."""
    if is_monorepo(example):
        return create_monorepo(example, force=True)
    return create_project(example, (example / SPEC).read_text(encoding="utf-8"), force=True)


def refresh(example: Path) -> list[str]:
    keep = {example / name for name in spec_files(example)}
    for path in sorted(example.rglob("*"), reverse=True):  # children before their folders
        if path in keep or (path.is_dir() and any(k.is_relative_to(path) for k in keep)):
            continue
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return build(example)


def main() -> int:
    for example in example_dirs():
        files = refresh(example)
        print(f"{example.relative_to(EXAMPLES.parent)}: {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
