"""Render a monorepo held on GitHub (for `mlgen sync --pr` and the bot): the same files a
local `mlgen sync` at its root renders, from specs fetched through the API.

The root spec and every listed model's spec (and, when trusted, each model's template
overrides) are written into a scratch folder, which then renders exactly like a checkout, so
`sync --pr` opens one pull request for all models.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlgen.models.contract import SPEC_FILENAME

from .publish.github.template_overrides import fetch_template_overrides

if TYPE_CHECKING:
    from .publish.github.sync_pr import OverridePolicy, RemoteRender


def render_monorepo_remote(spec_text: str, source: str, fetch: Callable[[str], bytes | None],
                           override_paths: Sequence[str], extra_templates: Sequence[Path],
                           overrides: OverridePolicy) -> RemoteRender:
    from .monorepo import (
        Monorepo,
        load_monorepo,
        monorepo_spec_sha,
        monorepo_template_set,
        render_monorepo,
    )
    from .publish.github.sync_pr import RemoteRender
    from .sync.lock import decode_text

    repository = source.rsplit(":", 1)[0]
    with tempfile.TemporaryDirectory(prefix="mlgen-remote-") as tmp:
        root = Path(tmp)
        (root / SPEC_FILENAME).write_text(spec_text, encoding="utf-8")
        # Every spec file in the tree, so the root spec's checks (and `discover:`) see the
        # same folders a checkout has; only the listed ones render.
        for path in override_paths:
            if path.endswith("/" + SPEC_FILENAME):
                data = fetch(path)
                if data is not None:
                    (root / path).parent.mkdir(parents=True, exist_ok=True)
                    (root / path).write_text(decode_text(data)[0], encoding="utf-8")
        mono = load_monorepo(root)
        notes: list[str] = []
        models = []
        for entry in mono.models:
            spec = entry.spec
            if spec.templates and not overrides.trusted:
                notes.append(overrides.note(f"{entry.folder}/{spec.templates}"))
                spec = spec.model_copy(update={"templates": None})
            elif spec.templates:
                fetch_template_overrides(spec.templates,
                                         f"{repository}:{entry.folder}/{SPEC_FILENAME}",
                                         override_paths, fetch, root, folder=entry.folder)
            models.append(replace(entry, spec=spec))
        mono = Monorepo(root, tuple(models))
        used: dict[str, dict[str, str]] = {}
        artifacts = render_monorepo(mono, (), extra_templates, used_templates=used)
        templates = monorepo_template_set(mono, used)
        spec_sha = monorepo_spec_sha(mono)
    branch = mono.models[0].spec.ci.github.default_branch if mono.models else None
    return RemoteRender(tuple(artifacts), templates, spec_sha, tuple(notes),
                        default_branch=branch)

