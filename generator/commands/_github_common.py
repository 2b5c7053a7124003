"""What the GitHub commands share: which repository they act on, which ones are trusted."""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import UsageError
from ..project import Project


def resolve_repository(explicit: str | None, folder: Path) -> str:
    """--repo, else $GITHUB_REPOSITORY (set by Actions), else ci.github.repository in mlgen.yaml."""
    if explicit:
        return explicit
    if os.environ.get("GITHUB_REPOSITORY"):
        return os.environ["GITHUB_REPOSITORY"]
    from ..monorepo import is_monorepo, load_monorepo, repository_root

    root = repository_root(folder)
    if is_monorepo(root):  # the models' specs name it (they share the repository)
        names = sorted({m.spec.ci.github.repository for m in load_monorepo(root).models
                        if m.spec.ci.github.repository})
        if len(names) > 1:
            raise UsageError(f"the models' ci.github.repository differ ({', '.join(names)}): "
                             "pass --repo OWNER/NAME")
        if names:
            return names[0]
    else:
        spec = Project(folder).load_optional()
        if spec is not None and spec.ci.github.repository:
            return spec.ci.github.repository
    raise UsageError("which GitHub repository? pass --repo OWNER/NAME, set GITHUB_REPOSITORY, "
                     "or set ci.github.repository in mlgen.yaml")


_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")


def trusted_repositories(values: Iterable[str], option: str) -> frozenset[str]:
    """The OWNER/NAME values of a --trust-templates style option, lower case (GitHub names
    are case-insensitive); commas and whitespace separate several in one value."""
    out = set()
    for value in values:
        for name in re.split(r"[\s,]+", value.strip()):
            if not name:
                continue
            if not _REPOSITORY.fullmatch(name):
                raise UsageError(f"{option} {name!r}: expected OWNER/NAME")
            out.add(name.lower())
    return frozenset(out)
