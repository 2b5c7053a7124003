"""`mlgen sync` on a checkout: render the project, read its files, plan, write all or nothing.

The planning itself is pure (`mlgen.sync.plan`); this module is the part that touches the disk.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..render import Artifact
from .lock import LOCK_PATH, TemplateSet
from .plan import SyncPlan, plan_sync


@dataclass(frozen=True)
class Rendered:
    artifacts: list[Artifact]
    templates: TemplateSet
    spec_sha256: str


def render_project(root: Path, extra_templates: Sequence[Path] = (),
                   only: Sequence[str] = ()) -> Rendered:
    from ..monorepo import is_monorepo
    from ..project import load_project, render_artifacts
    from ..render import BUILTIN_TEMPLATES
    from .lock import spec_sha, template_set

    if is_monorepo(root):  # every model's files, one lock at the root
        from ..monorepo import (
            load_monorepo,
            monorepo_spec_sha,
            monorepo_template_set,
            render_monorepo,
        )

        mono = load_monorepo(root)
        per_model: dict[str, dict[str, str]] = {}
        artifacts = render_monorepo(mono, only, extra_templates, used_templates=per_model)
        return Rendered(artifacts, monorepo_template_set(mono, per_model),
                        monorepo_spec_sha(mono))
    spec = load_project(root)
    used: dict[str, str] = {}
    artifacts = render_artifacts(spec, root, only, extra_templates, used_templates=used)
    return Rendered(artifacts, template_set(used, BUILTIN_TEMPLATES, root), spec_sha(root))


def disk_reader(root: Path) -> tuple[Callable[[str], bytes | None], Callable[[str], int | None]]:
    def read(path: str) -> bytes | None:
        target = root / path
        return target.read_bytes() if target.is_file() else None

    def mode(path: str) -> int | None:
        target = root / path
        return target.stat().st_mode & 0o777 if target.is_file() else None
    return read, mode


def plan_project(root: Path, extra_templates: Sequence[Path] = (), conflict: str = "inline",
                 restore: Collection[str] | bool = ()) -> SyncPlan:
    from .lock import read_lock

    rendered = render_project(root, extra_templates)
    read, mode = disk_reader(root)
    return plan_sync(rendered.artifacts, read_lock(root), read, read_mode=mode,
                     conflict=conflict, restore=restore, templates=rendered.templates,
                     spec_sha256=rendered.spec_sha256)


def apply_sync(root: Path, plan: SyncPlan) -> None:
    """Write the plan all-or-nothing; stale temp files of a killed earlier run are cleared."""
    from ..errors import MlgenError
    from .writer import write_files

    _remove_stale_temp_files(root, [a.path for a in plan.actions] + [LOCK_PATH])
    try:
        write_files(root, plan.file_writes())
    except OSError as exc:
        raise MlgenError(f"{root}: could not write {exc.filename or 'a file'} ({exc.strerror}); "
                         "nothing was changed") from None
    for action in plan.actions:  # folders a removed target leaves empty go too (git ignores them)
        if action.delete:
            folder = (root / action.path).parent
            while folder != root and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                folder = folder.parent


def _remove_stale_temp_files(root: Path, paths: Sequence[str]) -> None:
    folders = {(root / p).parent for p in paths}
    for folder in folders:
        if folder.is_dir():
            for leftover in folder.glob(".*.mlgen-tmp"):
                leftover.unlink(missing_ok=True)
