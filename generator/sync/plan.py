"""`mlgen sync`: bring generated files up to date without losing hand edits.

Whether a file is current (what `mlgen check` reports and `mlgen render` acts on) is decided
from this plan in `mlgen.sync.check`.

The core is pure: it never touches the disk or the network, so `mlgen sync --pr` runs it
against files read from the GitHub API exactly as `mlgen sync` runs it against the disk.

    plan_sync(rendered: Sequence[Artifact], lock: Lock | None,
              read_current: Callable[[str], bytes | None], *,
              read_mode: Callable[[str], int | None] = ..., conflict:
              "inline"|"rej"|"ours"|"theirs",
              restore: Collection[str] | bool = (), templates: TemplateSet, spec_sha256: str
              ) -> SyncPlan

- `rendered`: the new render (`mlgen.project.render_artifacts`).
- `lock`: the last lock (`Lock.from_json(bytes)`), or None for a project that has none.
- `read_current(path)`: the file's current bytes, or None when it does not exist. Called
  for rendered paths, for paths in the lock, and for `<path>.rej`.
- `read_mode(path)`: its permission bits (e.g. 0o755), or None when unknown.
- `restore`: paths the user deleted (opted out) to bring back; True brings back all.

`SyncPlan.actions` has one `FileAction` per path, sorted: `action` is one of ACTIONS below,
`data`/`mode` what to write (None: leave the file alone), `delete` whether to remove it,
`reject` the bytes of a `<path>.rej` to write. `SyncPlan.lock` is the lock to store
afterwards; `SyncPlan.file_writes()` is every write, the lock last (so a crash part-way
through leaves files the next sync recognises as already merged), ready for
`mlgen.sync.writer.write_files`. `merge_hook(plan)` adapts a plan to the (path, bytes) -> bytes|None
callback of `mlgen.publish.github.sync_pr`.

Per rendered file: never edited -> replaced; edited and the render did not change -> kept;
edited and changed -> three-way merge (base = last generated, ours = current, theirs = new).
Deleted by the user -> stays deleted, recorded as opted out. Files no longer generated are
deleted only when unedited. CRLF files keep CRLF; a mode the user changed is kept.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from ..render import Artifact
from .lock import LOCK_PATH, Lock, LockEntry, TemplateSet, decode_text, encode_text, sha256_text
from .merge import has_conflict_markers, merge3, reject_text
from .writer import FileWrite

ConflictMode = Literal["inline", "rej", "ours", "theirs"]
CONFLICT_MODES: tuple[str, ...] = ("inline", "rej", "ours", "theirs")

ACTIONS = {
    "unchanged": "already what mlgen generates",
    "create": "new generated file",
    "update": "never edited: replaced with the new render",
    "keep": "your edits kept; the render did not change here",
    "merge": "your edits merged with the new render",
    "conflict": "your edits and the new render overlap",
    "resolved": "your edits and the new render overlapped; one side was chosen",
    "unresolved": "still holds conflict markers or a .rej file from the last sync",
    "opt-out": "you deleted it: recorded as opted out, stays deleted",
    "opted-out": "opted out earlier: stays deleted",
    "restore": "opted out earlier: brought back",
    "remove": "no longer generated and never edited: deleted",
    "orphan": "no longer generated but edited: kept, no longer managed",
    "gone": "no longer generated and already deleted",
}


@dataclass(frozen=True)
class FileAction:
    path: str
    action: str
    old: bytes | None  # current bytes, None when absent
    data: bytes | None = None  # bytes to write; None leaves the file alone
    mode: int | None = None
    delete: bool = False
    reject: bytes | None = None  # content for `<path>.rej`
    conflicts: int = 0

    @property
    def changes_disk(self) -> bool:
        return self.delete or self.reject is not None or (
            self.data is not None and (self.data != self.old or self.mode is not None))


@dataclass(frozen=True)
class SyncPlan:
    actions: tuple[FileAction, ...]
    lock: Lock
    conflict_mode: str = "inline"
    previous: Lock | None = field(default=None, compare=False)

    @property
    def conflicts(self) -> list[str]:
        """Paths left for the user to resolve (exit 1)."""
        return [a.path for a in self.actions if a.action in ("conflict", "unresolved")]

    @property
    def changed(self) -> list[FileAction]:
        return [a for a in self.actions if a.changes_disk]

    def action(self, path: str) -> FileAction | None:
        return next((a for a in self.actions if a.path == path), None)

    def file_writes(self) -> list[FileWrite]:
        writes: list[FileWrite] = []
        for a in self.actions:
            if a.delete:
                writes.append(FileWrite(a.path, None))
            elif a.data is not None and a.changes_disk:
                writes.append(FileWrite(a.path, a.data, a.mode if a.mode is not None else 0o644))
            if a.reject is not None:
                writes.append(FileWrite(a.path + ".rej", a.reject, 0o644))
        writes.append(FileWrite(LOCK_PATH, self.lock.to_json()))
        return writes


def plan_sync(rendered: Sequence[Artifact], lock: Lock | None,
              read_current: Callable[[str], bytes | None], *,
              read_mode: Callable[[str], int | None] = lambda path: None,
              conflict: str = "inline", restore: Collection[str] | bool = (),
              templates: TemplateSet | None = None, spec_sha256: str = "") -> SyncPlan:
    if conflict not in CONFLICT_MODES:
        raise ValueError(f"conflict mode {conflict!r} is not one of {CONFLICT_MODES}")
    old = lock or Lock()
    actions: list[FileAction] = []
    entries: dict[str, LockEntry] = {}
    for artifact in rendered:
        entry = old.entry(artifact.path)
        wanted_back = restore is True or (
            not isinstance(restore, bool) and artifact.path in restore
        )
        action, new_entry = _plan_file(artifact, entry, read_current, read_mode, conflict,
                                       wanted_back)
        actions.append(action)
        if new_entry is not None:
            entries[artifact.path] = new_entry
    generated = {a.path for a in rendered}
    for path, entry in old.files.items():
        if path not in generated:
            actions.append(_plan_stale(path, entry, read_current(path)))
    new_lock = Lock(templates=templates or TemplateSet(), spec_sha256=spec_sha256).with_files(
        entries
    )
    return SyncPlan(tuple(sorted(actions, key=lambda a: a.path)), new_lock, conflict, lock)


def fresh_entry(artifact: Artifact, final_text: str, final_mode: int,
                 conflict: bool = False) -> LockEntry:
    return LockEntry(artifact.path, sha256_text(artifact.text), artifact.mode, artifact.text,
                     sha256_text(final_text), final_mode, artifact.target, False, conflict)


def _plan_file(artifact: Artifact, entry: LockEntry | None,
               read_current: Callable[[str], bytes | None],
               read_mode: Callable[[str], int | None], conflict: str,
               wanted_back: bool) -> tuple[FileAction, LockEntry | None]:
    path, new = artifact.path, artifact.text
    current = read_current(path)
    if current is None:
        if entry is not None and not wanted_back:
            return (FileAction(path, "opted-out" if entry.opted_out else "opt-out", None),
                    LockEntry(path, target=artifact.target, opted_out=True))
        data = encode_text(new, False)
        return (FileAction(path, "restore" if entry else "create", None, data, artifact.mode),
                fresh_entry(artifact, new, artifact.mode))
    ours, crlf = decode_text(current)
    mode_now = read_mode(path)
    tracked = entry is not None and not entry.opted_out and entry.base is not None
    # Keep a mode the user chose (chmod +x); otherwise follow the template's mode.
    user_mode = tracked and mode_now is not None and entry is not None and mode_now != entry.mode
    mode = mode_now if user_mode and mode_now is not None else artifact.mode
    mode_change = mode if mode_now is not None and mode_now != mode else None
    if has_conflict_markers(ours) and not has_conflict_markers(new) or (
            entry is not None and entry.conflict and read_current(path + ".rej") is not None):
        return FileAction(path, "unresolved", current), entry
    if ours == new:
        return (FileAction(path, "unchanged", current, current if mode_change else None,
                           mode_change), fresh_entry(artifact, ours, mode))
    if tracked and entry is not None and entry.base is not None:
        base = entry.base
        if ours == base:
            return (FileAction(path, "update", current, encode_text(new, crlf), mode),
                    fresh_entry(artifact, new, mode))
        if new == base:
            keep = replace(entry, written=sha256_text(ours), written_mode=mode, conflict=False,
                           target=artifact.target)
            return (FileAction(path, "keep", current, current if mode_change else None,
                               mode_change), keep)
    else:
        base = ""  # never recorded: a two-way merge, where every difference is a conflict
    merged = merge3(base, ours, new)
    if merged.conflicts == 0:
        return (FileAction(path, "merge", current, encode_text(merged.text, crlf), mode),
                fresh_entry(artifact, merged.text, mode))
    if conflict in ("ours", "theirs"):
        chosen = merge3(base, ours, new, favor=conflict)  # type: ignore[arg-type]
        return (FileAction(path, "resolved", current, encode_text(chosen.text, crlf), mode,
                           conflicts=merged.conflicts),
                fresh_entry(artifact, chosen.text, mode))
    if conflict == "rej":
        kept = merge3(base, ours, new, favor="ours")
        return (FileAction(path, "conflict", current, encode_text(kept.text, crlf), mode,
                           reject=encode_text(reject_text(path, merged.text), crlf),
                           conflicts=merged.conflicts),
                fresh_entry(artifact, kept.text, mode, conflict=True))
    return (FileAction(path, "conflict", current, encode_text(merged.text, crlf), mode,
                       conflicts=merged.conflicts),
            fresh_entry(artifact, merged.text, mode, conflict=True))


def _plan_stale(path: str, entry: LockEntry, current: bytes | None) -> FileAction:
    """A path the lock knows but the new render no longer produces."""
    if entry.opted_out or current is None:
        return FileAction(path, "gone", current)
    if entry.base is not None and decode_text(current)[0] == entry.base:
        return FileAction(path, "remove", current, delete=True)
    return FileAction(path, "orphan", current)


def merge_hook(plan: SyncPlan) -> Callable[[str, bytes], bytes | None]:
    """For `mlgen.publish.github.sync_pr`: (path, current bytes) -> bytes to write, or None on
    conflict.

    The plan must have been made with `read_current` reading the same remote files."""
    def merge(path: str, current: bytes) -> bytes | None:
        action = plan.action(path)
        if action is None or action.action in ("conflict", "unresolved"):
            return None
        return action.data if action.data is not None else current
    return merge




# ---- init and sync --pr: the lock after writing the render as is --------------------------------


def lock_after_render(previous: Lock | None, written: Sequence[Artifact],
                      templates: TemplateSet, spec_sha256: str) -> Lock:
    """The lock once `written` are on disk exactly as rendered; other entries are kept (so a
    later sync still knows files a partial `--only` render did not touch)."""
    files = dict(previous.files) if previous else {}
    for artifact in written:
        files[artifact.path] = fresh_entry(artifact, artifact.text, artifact.mode)
    return Lock(templates=templates, spec_sha256=spec_sha256).with_files(files)
