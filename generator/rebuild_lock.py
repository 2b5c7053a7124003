"""`mlgen sync --rebuild-lock`: a new lock from the files as they are, when the old one is
damaged or lost.

Without a trustworthy lock mlgen cannot tell a hand edit from an old render, so it takes every
file on disk as the user's version. Nothing but the lock is written, and the old lock is never
read (it may be unreadable):

- a file equal to the fresh render is recorded as generated and up to date;
- a file that differs is recorded with the fresh render as its merge base, but as not yet
  accepted (its `written` hash is the render's, not the disk's). `mlgen check` therefore lists
  it as edited, with the diff, and the next `mlgen sync` keeps it exactly as it is and records
  it; later spec or template changes merge three ways against that base, so the edit survives.
  The other safe choice, no base at all, would make the next sync a two-way merge that puts
  conflict markers around every difference in every such file;
- a rendered file missing on disk gets no entry: `check` says missing and `sync` creates it
  (whether it had been deleted on purpose is unknown; delete it again afterwards to opt out);
- files the damaged lock knew but the render no longer makes are left on disk, unmanaged.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .render import Artifact
from .sync.lock import Lock, LockEntry, TemplateSet, decode_text, sha256_text

REBUILD_STATUSES = {
    "generated": "matches the render: recorded as generated",
    "edited": "differs from the render: kept as your edit (see `mlgen check`; `mlgen sync` "
              "records it)",
    "conflict": "holds conflict markers: kept; resolve them, then run `mlgen sync`",
    "missing": "not on disk: `mlgen sync` will create it",
}


@dataclass(frozen=True)
class RebuiltFile:
    path: str
    status: str  # a key of REBUILD_STATUSES


def rebuild_lock(rendered: Sequence[Artifact], read_current: Callable[[str], bytes | None],
                 read_mode: Callable[[str], int | None], *, templates: TemplateSet,
                 spec_sha256: str) -> tuple[Lock, list[RebuiltFile]]:
    from .sync.merge import has_conflict_markers

    entries: dict[str, LockEntry] = {}
    report: list[RebuiltFile] = []
    for artifact in sorted(rendered, key=lambda a: a.path):
        current = read_current(artifact.path)
        if current is None:
            report.append(RebuiltFile(artifact.path, "missing"))
            continue
        ours = decode_text(current)[0]
        mode = read_mode(artifact.path)
        generated = sha256_text(artifact.text)
        # `written` is the render's hash even when the disk differs: "not recorded yet" is
        # what makes `check` show the difference instead of silently accepting it.
        entries[artifact.path] = LockEntry(
            artifact.path, generated, artifact.mode, artifact.text, generated,
            mode if mode is not None else artifact.mode, artifact.target)
        if ours == artifact.text:
            status = "generated"
        elif has_conflict_markers(ours) and not has_conflict_markers(artifact.text):
            status = "conflict"
        else:
            status = "edited"
        report.append(RebuiltFile(artifact.path, status))
    lock = Lock(templates=templates, spec_sha256=spec_sha256).with_files(entries)
    return lock, report
