"""Is each generated file current? One decision, which `mlgen check` reports and `mlgen render`
acts on, so the two never disagree.

Both start from the sync plan (`mlgen.sync.plan.plan_sync`: what `mlgen sync` would do with the new
render, the lock and the disk) and classify every path with `file_status`:

    ok        current: exactly the render, or a hand edit a sync recorded and the render did
              not change since, or a file opted out or gone as recorded
    stale     out of date with mlgen.yaml or the templates
    missing   generated but never written
    edited    edited outside `mlgen sync` (not recorded in the lock)
    deleted   deleted outside `mlgen sync`
    conflict  conflict markers or a .rej file a sync left

`mlgen check` fails unless every path is ok. `mlgen render` leaves ok paths alone and brings the
others up to date only where nothing of the user's is lost (`plan_render`); otherwise it
refuses and points to `mlgen sync`, which merges.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ..render import Artifact
from ..textdiff import unified_diff
from .lock import Lock, LockEntry, decode_text, encode_text, sha256_text
from .plan import FileAction, SyncPlan, fresh_entry
from .writer import FileWrite

CHECK_STATUSES = {
    "ok": "up to date",
    "stale": "out of date with mlgen.yaml or the templates: run `mlgen sync`",
    "missing": "not written yet: run `mlgen sync`",
    "edited": "edited outside `mlgen sync`: run `mlgen sync` to record (and merge) the edit",
    "deleted": "deleted outside `mlgen sync`: run `mlgen sync` to record the opt-out, or "
               "`mlgen sync --restore PATH` to bring it back",
    "conflict": "has unresolved conflicts: resolve them, then run `mlgen sync`",
}
# Sync actions that lose nothing of the user's: render may carry them out itself. The others
# (a merge, a conflict, an edit not yet recorded) are sync's to do.
LOSSLESS_ACTIONS = frozenset({"unchanged", "update", "create", "restore", "remove", "orphan",
                              "opted-out", "gone"})


def file_status(action: FileAction, entry: LockEntry | None) -> str:
    """Classify one path of a plan made from the disk; `entry` is its previous lock entry."""
    ours = decode_text(action.old)[0] if action.old is not None else None
    recorded = (entry is not None and ours is not None and not entry.opted_out
                and sha256_text(ours) == entry.written)
    if action.action in ("unchanged", "opted-out", "gone"):
        return "stale" if action.changes_disk else "ok"
    if action.action == "keep":
        return "ok" if recorded else "edited"
    if action.action in ("merge", "conflict", "resolved"):
        return "stale" if recorded else "edited"
    if action.action == "create":
        return "missing"
    if action.action == "opt-out":
        return "deleted"
    if action.action == "unresolved":
        return "conflict"
    return "stale"  # update, restore, remove, orphan


# ---- check -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckItem:
    path: str
    status: str
    sync_action: str  # what `mlgen sync` would do
    diff: str = ""


def check_plan(plan: SyncPlan) -> list[CheckItem]:
    """Classify each path of a plan made from the disk. Anything but 'ok' fails the check."""
    previous = plan.previous or Lock()
    items = []
    for a in plan.actions:
        entry = previous.entry(a.path)
        status = file_status(a, entry)
        ours = decode_text(a.old)[0] if a.old is not None else None
        diff = ""
        if status == "edited" and entry is not None and entry.base is not None:
            diff = unified_diff(a.path, entry.base, ours, "last generated", "on disk")
        elif status == "deleted" and entry is not None:
            diff = unified_diff(a.path, entry.base, None, "last generated", "on disk")
        elif status in ("stale", "missing"):
            after = None if a.delete else decode_text(a.data)[0] if a.data is not None else ours
            diff = unified_diff(a.path, ours, after, "on disk", "after mlgen sync")
        items.append(CheckItem(a.path, status, a.action, diff))
    return items


# ---- render ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderChange:
    """What render does to one path: create, update, delete, orphan (kept, no longer managed),
    unchanged, or refused (it holds an edit render would lose)."""

    path: str
    action: str
    status: str  # file_status of the path before the render
    old: bytes | None
    new: bytes | None  # what is on disk afterwards; None when absent
    mode: int = 0o644


@dataclass(frozen=True)
class RenderPlan:
    changes: tuple[RenderChange, ...]
    lock: Lock

    @property
    def refused(self) -> list[RenderChange]:
        return [c for c in self.changes if c.action == "refused"]

    def file_writes(self) -> list[FileWrite]:
        """Every file write, without the lock (the caller adds it when it changed)."""
        writes = []
        for c in self.changes:
            if c.action in ("create", "update") and c.new is not None:
                writes.append(FileWrite(c.path, c.new, c.mode))
            elif c.action == "delete":
                writes.append(FileWrite(c.path, None))
        return writes


def plan_render(plan: SyncPlan, rendered: Sequence[Artifact], force: bool = False,
                keep_entries: Mapping[str, LockEntry] | None = None) -> RenderPlan:
    """What `mlgen render` does, from the sync plan `mlgen check` judges (no restore asked).

    A path check calls ok is left as it is. Any other path gets sync's action when that loses
    nothing (LOSSLESS_ACTIONS), and a file deleted outside sync is written again. The rest is
    refused, or with `force` overwritten with the render; `force` also overwrites hand edits
    a sync recorded and brings back files opted out. `keep_entries` are lock entries outside
    the render (other targets of an `--only` render), kept as they are.
    """
    previous = plan.previous or Lock()
    artifacts = {a.path: a for a in rendered}
    entries: dict[str, LockEntry] = dict(keep_entries or {})
    entries.update(plan.lock.files)
    changes = []
    for a in plan.actions:
        status = file_status(a, previous.entry(a.path))
        artifact = artifacts.get(a.path)
        if artifact is not None and (a.action == "opt-out" or force and a.action != "unchanged"):
            changes.append(RenderChange(a.path, "create" if a.old is None else "update", status,
                                        a.old, encode_text(artifact.text, False), artifact.mode))
            entries[a.path] = fresh_entry(artifact, artifact.text, artifact.mode)
        elif status == "ok":
            changes.append(RenderChange(a.path, "unchanged", status, a.old, a.old))
        elif a.action in LOSSLESS_ACTIONS:
            changes.append(_sync_change(a, status))
        else:
            changes.append(RenderChange(a.path, "refused", status, a.old, a.old))
    return RenderPlan(tuple(changes), plan.lock.with_files(entries))


def _sync_change(a: FileAction, status: str) -> RenderChange:
    if a.delete:
        return RenderChange(a.path, "delete", status, a.old, None)
    if a.action == "orphan":
        return RenderChange(a.path, "orphan", status, a.old, a.old)
    if a.data is None or not a.changes_disk:
        return RenderChange(a.path, "unchanged", status, a.old, a.old)
    return RenderChange(a.path, "create" if a.old is None else "update", status, a.old, a.data,
                        a.mode if a.mode is not None else 0o644)


def scoped_lock(
    lock: Lock | None, targets: Collection[str]
) -> tuple[Lock | None, dict[str, LockEntry]]:
    """Split a lock for an `--only` render: (the entries of `targets`, every other entry)."""
    if lock is None or not targets:
        return lock, {}
    inside = {p: e for p, e in lock.files.items() if e.target in targets}
    outside = {p: e for p, e in lock.files.items() if p not in inside}
    return lock.with_files(inside), outside
