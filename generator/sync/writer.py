"""Write a set of files all-or-nothing.

Every new file is first written in full next to its destination and flushed; only when all of
them are on disk are they renamed into place. If anything fails before or during the renames,
the temporary files are removed and any file already replaced is restored, so the tree is as
it was. A process killed outright (SIGKILL, power loss) cannot restore anything, so just before
the first rename a journal (`.mlgen/journal.json`) records every rename still to do: the next
mlgen command that reads or writes the project finishes them (`finish_interrupted`), so the
tree is never left half old, half new. Killed before the journal is written, nothing was
replaced and the tree is as it was.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from mlgen.models.contract import STATE_DIR

from ..errors import MlgenError

JOURNAL = f"{STATE_DIR}/journal.json"


@dataclass(frozen=True)
class FileWrite:
    path: str  # relative to the root, POSIX
    data: bytes | None  # None deletes the file
    mode: int = 0o644


def write_files(root: Path, writes: list[FileWrite]) -> None:
    finish_interrupted(root)
    staged: list[tuple[Path, Path | None, FileWrite]] = []
    try:
        for item in writes:
            dest = root / item.path
            if item.data is None:
                staged.append((dest, None, item))
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{dest.name}.", suffix=".mlgen-tmp", dir=dest.parent
            )
            with os.fdopen(fd, "wb") as handle:
                handle.write(item.data)
            os.chmod(tmp, item.mode)
            staged.append((dest, Path(tmp), item))
        _fsync_all([tmp for _, tmp, _ in staged if tmp is not None])
        _pause_for_tests("MLGEN_TEST_PAUSE_BEFORE_COMMIT")
        _write_journal(root, staged)
    except BaseException:
        for _, tmp_path, _ in staged:
            if tmp_path is not None:
                tmp_path.unlink(missing_ok=True)
        (root / JOURNAL).unlink(missing_ok=True)
        raise
    _commit(root, staged)
    _fsync_dirs({dest.parent for dest, _, _ in staged})
    (root / JOURNAL).unlink(missing_ok=True)


def _fsync_all(paths: list[Path], workers: int = 8) -> None:
    """Flush every staged file to disk before any is renamed into place, several at once: the
    filesystem then commits them in a few journal transactions instead of one per file (23
    files of a render: 20-80 ms one after the other on this project's machines, 3-13 ms so)."""
    errors: list[OSError] = []

    def sync(batch: list[Path]) -> None:
        for path in batch:
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=sync, args=(paths[i::workers],))
               for i in range(min(workers, len(paths)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _pause_for_tests(variable: str) -> None:
    """Tests kill a real `mlgen sync` here to prove what an interrupted write leaves:
    MLGEN_TEST_PAUSE_BEFORE_COMMIT (everything staged, nothing replaced, no journal yet) and
    MLGEN_TEST_PAUSE_MID_COMMIT (journal written, the first file renamed, the others not)."""
    pause = os.environ.get(variable)
    if pause:
        import time

        time.sleep(float(pause))


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _write_journal(root: Path, staged: list[tuple[Path, Path | None, FileWrite]]) -> None:
    """Record the renames and deletions still to do, durably, before doing the first one."""
    entries = []
    for dest, tmp, item in staged:
        entries.append({"path": item.path,
                        "tmp": tmp.name if tmp is not None else None,
                        "old": _sha256(dest),
                        "new": hashlib.sha256(item.data).hexdigest() if item.data is not None
                        else None})
    path = root / JOURNAL
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".journal.json.tmp")
    with open(tmp, "wb") as handle:
        handle.write(json.dumps({"version": 1, "files": entries}, indent=1).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dirs({path.parent})


def _fsync_dirs(folders: set[Path]) -> None:
    """Make renames in these folders durable (the journal's removal must not overtake them)."""
    for folder in folders:
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass  # some filesystems refuse fsync on a directory; the renames still happened
        finally:
            os.close(fd)


def finish_interrupted(root: Path) -> list[str]:
    """Finish the renames of a write that was killed half way; returns the paths finished.

    Each file is checked first: its temp file must be in its own folder with mlgen's name
    pattern, and the file in place must still be what it was when the journal was written (or
    already the new content). If anything was changed since, nothing is touched and the error
    says what to look at, so a hand edit made after the crash is never overwritten.
    """
    path = root / JOURNAL
    try:
        journal = json.loads(path.read_bytes())
        files = journal["files"]
        todo: list[tuple[Path, Path | None, dict[str, str | None]]] = []
        for entry in files:
            rel = str(entry["path"])
            dest = (root / rel).resolve()
            if Path(rel).is_absolute() or ".." in Path(rel).parts or root.resolve() not in \
                    dest.parents:
                raise ValueError(f"path {rel!r} is outside the project")
            tmp_name = entry["tmp"]
            if tmp_name is not None and not (tmp_name.startswith(f".{dest.name}.")
                                             and tmp_name.endswith(".mlgen-tmp")
                                             and "/" not in tmp_name):
                raise ValueError(f"temp file {tmp_name!r} is not mlgen's")
            todo.append((dest, dest.parent / tmp_name if tmp_name else None, entry))
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as exc:
        raise MlgenError(f"{path}: not a journal mlgen can finish ({exc}); the tree may be half "
                         "written: check `git status`, then delete this file") from None
    changed = []
    for dest, tmp, entry in todo:
        now = _sha256(dest)
        pending = (tmp is not None and tmp.exists()) or (tmp is None and now is not None)
        if pending and now != entry["old"] and now != entry["new"]:
            changed.append(str(entry["path"]))
    if changed:
        raise MlgenError(f"{path}: an earlier mlgen write was interrupted and these files were "
                         f"changed since: {', '.join(changed)}. Nothing was touched; compare "
                         "them with the .mlgen-tmp files beside them, keep what you want, then "
                         "delete the journal and the temp files")
    finished = []
    for dest, tmp, entry in todo:
        if tmp is not None and tmp.exists():
            os.replace(tmp, dest)
            finished.append(str(entry["path"]))
        elif tmp is None and dest.exists():
            dest.unlink()
            finished.append(str(entry["path"]))
    _fsync_dirs({dest.parent for dest, _, _ in todo})
    path.unlink(missing_ok=True)
    if finished:
        sys.stderr.write(f"mlgen: finished a write that was interrupted ({len(finished)} "
                         f"file(s) from {JOURNAL})\n")
    return finished


def _commit(root: Path, staged: list[tuple[Path, Path | None, FileWrite]]) -> None:
    backups: list[tuple[Path, bytes | None, int]] = []
    try:
        for index, (dest, tmp_path, _) in enumerate(staged):
            if index == 1:
                _pause_for_tests("MLGEN_TEST_PAUSE_MID_COMMIT")
            old = dest.read_bytes() if dest.exists() else None
            mode = dest.stat().st_mode & 0o7777 if old is not None else 0
            backups.append((dest, old, mode))
            if tmp_path is None:
                dest.unlink(missing_ok=True)
            else:
                os.replace(tmp_path, dest)
    except BaseException:
        for dest, old, mode in reversed(backups):
            if old is None:
                dest.unlink(missing_ok=True)
            else:
                dest.write_bytes(old)
                os.chmod(dest, mode)
        for _, tmp_path, _ in staged:
            if tmp_path is not None:
                tmp_path.unlink(missing_ok=True)
        (root / JOURNAL).unlink(missing_ok=True)  # rolled back: nothing is left to finish
        raise
