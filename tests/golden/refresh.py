"""Regenerate every example repository from its mlgen.yaml: `make golden`.

The examples are the golden files: tests/golden/test_examples.py renders each spec afresh
and compares the whole tree byte for byte. Everything but mlgen.yaml is derived, so this
deletes the rest of each example and writes it again (scaffold, pipeline files, lock).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from mlgen.commands.init import create_project

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPEC = "mlgen.yaml"


def example_dirs() -> list[Path]:
    return sorted(p.parent for p in EXAMPLES.glob(f"*/{SPEC}"))


def refresh(example: Path) -> list[str]:
    spec_text = (example / SPEC).read_text(encoding="utf-8")
    for child in example.iterdir():
        if child.name == SPEC:
            continue
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    return create_project(example, spec_text, force=True)


def main() -> int:
    for example in example_dirs():
        files = refresh(example)
        print(f"{example.relative_to(EXAMPLES.parent)}: {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
