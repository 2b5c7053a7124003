"""mypy --strict over the import package as users import it: `mlgen`, `mlgen.models`.

The source folders are named generator/ and models/, and the editable install maps them to
`mlgen` through an import hook that mypy cannot follow, so run on the folders themselves it
types every `from mlgen... import` as Any. This builds a tree of symlinks shaped like the
installed package (.cache/typecheck/mlgen -> generator/*, mlgen/models -> models/*) and checks
that, so every absolute import is resolved and checked. Exit code: mypy's.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def link_tree(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    for source, target in ((ROOT / "generator", dest / "mlgen"),
                           (ROOT / "models", dest / "mlgen" / "models")):
        for path in sorted(source.rglob("*")):
            if "__pycache__" in path.parts or not (path.suffix in (".py", ".pyi")
                                                   or path.name == "py.typed"):
                continue
            link = target / path.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, link)


def main() -> int:
    work = ROOT / ".cache" / "typecheck"
    link_tree(work)
    command = [sys.executable, "-m", "mypy", "--strict", "--config-file",
               str(ROOT / "pyproject.toml"), "-p", "mlgen", *sys.argv[1:]]
    return subprocess.run(command, cwd=work, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
