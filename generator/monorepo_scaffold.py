"""Write a monorepo's files from its specs: each model's starter project in its folder, then
every pipeline file and the one root lock (what `mlgen init` does for a single model).

The examples' golden refresh uses it; after that, `mlgen sync` at the root keeps the files.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlgen.models.contract import SPEC_FILENAME

from .errors import UsageError
from .monorepo import load_monorepo


def create_monorepo(root: Path, force: bool = False,
                    extra_templates: Sequence[Path] = ()) -> list[str]:
    """Write every model's scaffold and the monorepo's pipeline files, all or nothing.

    The specs (root and models) must already be in place; they are never rewritten.
    """
    from .commands.schema import schema_text
    from .project import template_dirs
    from .render import make_environment
    from .scaffold import scaffold_artifacts
    from .sync.local import render_project
    from .sync.lock import LOCK_PATH
    from .sync.plan import lock_after_render
    from .sync.writer import FileWrite, write_files

    mono = load_monorepo(root)
    writes: list[FileWrite] = []
    for entry in mono.models:
        folder = root / entry.folder
        env = make_environment(template_dirs(entry.spec, folder, extra_templates))
        env.globals["model_dir"] = entry.folder
        writes += [FileWrite(f"{entry.folder}/.mlgen/mlgen.schema.json", schema_text().encode()),
                   FileWrite(f"{entry.folder}/.mlgen/build/.gitkeep", b"")]
        writes += [FileWrite(f"{entry.folder}/{a.path}", a.text.encode(), a.mode)
                   for a in scaffold_artifacts(entry.spec, env)]
    rendered = render_project(root, extra_templates)
    writes += [FileWrite(a.path, a.text.encode(), a.mode) for a in rendered.artifacts]
    lock = lock_after_render(None, rendered.artifacts, rendered.templates, rendered.spec_sha256)
    writes.append(FileWrite(LOCK_PATH, lock.to_json()))
    existing = [w.path for w in writes if (root / w.path).exists()]
    if existing and not force:
        raise UsageError(f"{root}: {len(existing)} file(s) already exist ({existing[0]} ...); "
                         "nothing was written. Use `mlgen sync` to update them.")
    write_files(root, writes)
    return [SPEC_FILENAME, *(f"{m}/{SPEC_FILENAME}" for m in mono.folders),
            *(w.path for w in writes)]
