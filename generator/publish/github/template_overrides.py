"""Fetch a remote repository's template overrides into a scratch folder, so a remote render
(`sync --pr`, the bot, fleet sync) sees them exactly where a checkout would have them.

One function for the single-model render (`sync_pr.render_spec`) and the monorepo render
(`monorepo_remote`), so both pick the same files and fail with the same message.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ...errors import MlgenError


def override_prefix(templates: str, folder: str = "") -> str:
    """The repository path every override file starts with: the spec's `templates:` folder
    (however written: `ci/templates`, `./ci/templates/`, `/ci/templates`), under the model's
    `folder` in a monorepo."""
    prefix = templates.strip("/").removeprefix("./").rstrip("/") + "/"
    return f"{folder}/{prefix}" if folder else prefix


def fetch_template_overrides(templates: str, where: str, override_paths: Sequence[str],
                             fetch: Callable[[str], bytes | None], root: Path,
                             folder: str = "") -> list[str]:
    """Write every file of `override_paths` under the `templates:` folder (in the model's
    `folder`) to the same path under `root`, read with `fetch(path)`; return the paths found.

    `where` names the spec in the error (`OWNER/NAME:mlgen.yaml`, or the model's spec in a
    monorepo) when the folder holds no file, since rendering would then silently fall back
    to the built-in templates.
    """
    prefix = override_prefix(templates, folder)
    wanted = [p for p in override_paths if p.startswith(prefix)]
    if not wanted:
        raise MlgenError(f"{where}: templates: {templates!r} names no folder of files in the "
                         "repository")
    for path in wanted:
        data = fetch(path)
        if data is not None:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
    return wanted
