"""What the GitHub commands share: which repository they act on."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError


def resolve_repository(explicit: str | None, folder: Path) -> str:
    """--repo, else $GITHUB_REPOSITORY (set by Actions), else ci.github.repository in mlgen.yaml."""
    if explicit:
        return explicit
    if os.environ.get("GITHUB_REPOSITORY"):
        return os.environ["GITHUB_REPOSITORY"]
    if (folder / "mlgen.yaml").is_file():
        from ..project import load_project

        spec = load_project(folder)
        if spec.ci.github.repository:
            return spec.ci.github.repository
    raise UsageError("which GitHub repository? pass --repo OWNER/NAME, set GITHUB_REPOSITORY, "
                     "or set ci.github.repository in mlgen.yaml")
