"""Finding the external tools and running them.

Search order for an executable: each folder in MLGEN_TOOLS_DIR (os.pathsep-separated; a
folder prepared by `scripts/install-tools.sh`, so its `.tools/bin` and `node_modules/.bin`
are searched as well as the folder itself), then the mlgen source checkout's own
`.tools/bin` and `node_modules/.bin` when mlgen runs from a checkout, then PATH.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .model import ToolMissing

# The mlgen checkout when installed editable (generator/ sits next to package.json).
_CHECKOUT = Path(__file__).resolve().parent.parent.parent
TIMEOUT_SECONDS = 600


def tool_roots() -> list[Path]:
    roots = [Path(p) for p in os.environ.get("MLGEN_TOOLS_DIR", "").split(os.pathsep) if p]
    if (_CHECKOUT / "scripts" / "install-tools.sh").is_file():
        roots.append(_CHECKOUT)
    return roots


def search_dirs() -> list[Path]:
    dirs: list[Path] = []
    for root in tool_roots():
        dirs += [root, root / ".tools" / "bin", root / "node_modules" / ".bin"]
    return dirs


def find_executable(name: str) -> str | None:
    for folder in search_dirs():
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require_executable(name: str, what: str = "") -> str:
    found = find_executable(name)
    if found is None:
        raise ToolMissing(f"{what or name} not found on PATH, in MLGEN_TOOLS_DIR or the "
                          "mlgen checkout's .tools/bin and node_modules/.bin")
    return found


def find_node_module(name: str) -> Path | None:
    candidates = [root / "node_modules" / name for root in tool_roots()]
    candidates += [Path(p) / name for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p]
    for bin_dir in os.environ.get("PATH", "").split(os.pathsep):
        if bin_dir.endswith(os.path.join("node_modules", ".bin")):
            candidates.append(Path(bin_dir).parent / name)
    return next((c for c in candidates if (c / "package.json").is_file()), None)


def run(argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None,
        timeout: int = TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
    """Run a tool with no stdin; the tool's own exit code is for the caller to judge."""
    full_env = dict(os.environ)
    # The tools find node/java/each other by PATH: give them the same folders we search.
    full_env["PATH"] = os.pathsep.join([*map(str, search_dirs()), full_env.get("PATH", "")])
    full_env.update(env or {})
    return subprocess.run(list(argv), cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, encoding="utf-8", errors="replace",
                          timeout=timeout, check=False)


def tool_error(tool: str, file: str, proc: subprocess.CompletedProcess[str], what: str) -> str:
    """A one-paragraph message for a tool that failed to run (never counted as a pass)."""
    tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
    return f"{tool} {what} (exit {proc.returncode}): " + " | ".join(tail)[:800]
