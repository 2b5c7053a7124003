"""What tests across the packages share: the repository's paths and the one way to run mlgen.

`run_mlgen` runs the real console entry point in a subprocess, as a user or a pipeline would;
`call_mlgen` runs the same entry point in this process, for tests that patch the environment
(monkeypatch) or read an in-process emulator's state, and returns (exit code, stdout, stderr).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SKETCH = EXAMPLES / "credit-risk" / "mlgen.yaml"
REFERENCE = REPO / "tests" / "reference"  # vendored reference files, see its README.md
MLGEN_SCRIPT = Path(sys.executable).parent / "mlgen"  # the console script of this venv


def run_mlgen(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
              extra_env: Mapping[str, str] | None = None, input_text: str | None = None,
              timeout: float = 300, check: bool = False,
              script: bool = False) -> subprocess.CompletedProcess[str]:
    """Run mlgen in a subprocess.

    env: the whole environment (default: this process's); extra_env: merged over it.
    script: run the installed console script instead of `python -m mlgen` (what a user types).
    check: raise with both output streams when the exit code is not 0.
    """
    command = [str(MLGEN_SCRIPT)] if script else [sys.executable, "-m", "mlgen"]
    environment = {**(os.environ if env is None else env), **(extra_env or {})}
    done = subprocess.run([*command, *args], cwd=cwd, input=input_text, capture_output=True,
                          text=True, env=environment, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"mlgen {' '.join(args)} exited {done.returncode}\n"
                             f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-6000:]}")
    return done


def call_mlgen(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run mlgen's entry point in this process; exit code and output as a user sees them."""
    from mlgen.cli import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: Path) -> dict[str, str]:
    """Path -> sha256 and mode of every file under root (to prove nothing was written)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            + oct(p.stat().st_mode) for p in sorted(root.rglob("*")) if p.is_file()}
