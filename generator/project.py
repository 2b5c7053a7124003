"""From a project folder to the list of Artifacts it should contain.

Template folders layer, first match wins: the command line's `--templates`, then the spec's
`templates:` (a project's overrides), then `MLGEN_TEMPLATES` (an organisation's overrides,
several separated by ':'), then the templates shipped with mlgen.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import UsageError
from .render import Artifact, make_environment
from .spec import Spec
from .spec_loader import SPEC_FILENAME, load_spec


def load_project(project_dir: Path) -> Spec:
    return load_spec(project_dir / SPEC_FILENAME)


def template_dirs(spec: Spec, project_dir: Path, extra: Iterable[Path] = ()) -> list[Path]:
    dirs = [Path(p) for p in extra]
    if spec.templates:
        dirs.append(project_dir / spec.templates)
    dirs += [Path(p) for p in os.environ.get("MLGEN_TEMPLATES", "").split(os.pathsep) if p]
    for folder in dirs:
        if not folder.is_dir():
            raise UsageError(f"template override folder {folder} does not exist "
                             "(from --templates, the spec's 'templates' key or MLGEN_TEMPLATES)")
    return dirs


def render_artifacts(spec: Spec, project_dir: Path, only: Iterable[str] = (),
                     extra_templates: Iterable[Path] = (),
                     used_templates: dict[str, str] | None = None) -> list[Artifact]:
    """Every generated file for `spec`, sorted by path; deterministic for a given input.

    `used_templates`, when given, is filled with template name -> file for every template the
    render loaded (the lock file fingerprints exactly those, overrides included).
    """
    from .targets import TARGETS

    wanted = list(only) or list(spec.targets)
    unknown = [t for t in wanted if t not in TARGETS]
    if unknown:
        raise UsageError(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    env = make_environment(template_dirs(spec, project_dir, extra_templates))
    if used_templates is not None:
        from .sync.lock import RecordingLoader

        env.loader = RecordingLoader(env.loader, used_templates)
    artifacts: dict[str, Artifact] = {}
    for name in wanted:
        if name not in spec.targets:
            continue
        for artifact in TARGETS[name](spec, env):
            if artifact.path in artifacts:
                raise UsageError(f"two targets write {artifact.path}; change 'outputs' in "
                                 f"{SPEC_FILENAME} so their paths differ")
            artifacts[artifact.path] = artifact
    return [artifacts[p] for p in sorted(artifacts)]
