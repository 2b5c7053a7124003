"""The user's own folders mlgen keeps state in (not a repository's: see mlgen.project)."""
from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/mlgen, else ~/.cache/mlgen: the Jinja bytecode and Jenkins plan caches."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlgen"
