"""mypy --strict is clean over the package as users import it (scripts/typecheck.py says why
it checks a link tree rather than the source folders)."""
from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def test_mypy_strict_is_clean() -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "typecheck.py")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout
