"""Three-way text merge with git's own machinery (`git merge-file`), offline, on temp files.

git is already a requirement of every repository mlgen serves, and its xdiff merge is the one
users know how to resolve: standard `<<<<<<<` / `=======` / `>>>>>>>` markers, zealous
conflict shrinking, and `--ours`/`--theirs` resolution. No repository is needed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import MlgenError

OURS_LABEL = "yours (on disk)"
BASE_LABEL = "last generated"
THEIRS_LABEL = "new render"

# A conflict block in git's default style: start, ours lines, separator, theirs lines, end.
_MARKER_RE = re.compile(r"^(<{7}|={7}|>{7}|\|{7})( |$)", re.MULTILINE)
_BLOCK_RE = re.compile(r"^<{7}[^\n]*\n.*?^>{7}[^\n]*(?:\n|$)", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class MergeResult:
    text: str
    conflicts: int  # conflict hunks left (0 when the merge is clean or a side was favoured)


def merge3(base: str, ours: str, theirs: str, *,
           favor: Literal["ours", "theirs"] | None = None) -> MergeResult:
    """Merge `ours` and `theirs`, both descended from `base`. Texts use LF line endings."""
    git = shutil.which("git")
    if git is None:
        raise MlgenError("mlgen sync needs git on PATH for three-way merges (git merge-file)")
    with tempfile.TemporaryDirectory(prefix="mlgen-merge-") as tmp:
        files = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp) / name
            path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
            files.append(str(path))
        # Pin the conflict style so a user's merge.conflictStyle=diff3/zdiff3 cannot change
        # what `mlgen check` recognises; no repository or global config is consulted otherwise.
        args = [git, "-c", "merge.conflictStyle=merge", "merge-file", "-p",
                "-L", OURS_LABEL, "-L", BASE_LABEL, "-L", THEIRS_LABEL]
        if favor:
            args.append(f"--{favor}")
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
        done = subprocess.run(args + files, capture_output=True, env=env, check=False)
    if done.returncode < 0 or done.returncode > 127:
        raise MlgenError(f"git merge-file failed: {done.stderr.decode(errors='replace').strip()}")
    return MergeResult(done.stdout.decode("utf-8", errors="surrogateescape"), done.returncode)


def has_conflict_markers(text: str) -> bool:
    """True when `text` still holds a whole conflict block left by a merge."""
    return bool(_BLOCK_RE.search(text)) and bool(_MARKER_RE.search(text))


def reject_text(path: str, merged_inline: str) -> str:
    """The `.rej` companion of a file kept as the user's version: every conflicting hunk, with
    the line it starts at in the inline merge, so the user can apply the new render by hand."""
    out = [f"# mlgen sync could not merge these hunks of {path}; the file keeps your version\n",
           "# there. Apply what you need from the new render by hand, delete this file, then\n",
           "# run `mlgen sync` again to record the result.\n"]
    for match in _BLOCK_RE.finditer(merged_inline):
        line = merged_inline.count("\n", 0, match.start()) + 1
        block = match.group(0)
        out.append(f"@@ near line {line} @@\n{block}" + ("" if block.endswith("\n") else "\n"))
    return "".join(out)
