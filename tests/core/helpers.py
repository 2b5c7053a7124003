from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SKETCH = REPO / "examples" / "credit-risk" / "mlgen.yaml"


def run_mlgen(*args: str, cwd: Path | None = None, input_text: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "mlgen", *args], cwd=cwd, input=input_text,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False,
                          timeout=120)


def snapshot(root: Path) -> dict[str, str]:
    """Path -> sha256 and mode of every file under root (to prove nothing was written)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
            for p in sorted(root.rglob("*")) if p.is_file()}
