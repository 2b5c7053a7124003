"""The model repository a command acts on, and the list of Artifacts it should contain.

`Project` knows where a repository's `mlgen.yaml` is and how to load it, required or "if there
is one" (the names of mlgen.yaml and `.mlgen/` are in mlgen.models.contract). Commands find
the folder from the root group's `-C` with `project_dir(ctx)`. Importing this module stays
cheap (no pydantic, no Jinja) so that light commands start fast.

Template folders layer, first match wins: the command line's `--templates`, then the spec's
`templates:` (a project's overrides), then `MLGEN_TEMPLATES` (an organisation's overrides,
several separated by ':'), then the templates shipped with mlgen.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlgen.models.contract import SPEC_FILENAME

from .errors import UsageError

if TYPE_CHECKING:
    import click

    from .render import Artifact
    from .spec import Spec



@dataclass(frozen=True)
class Settings:
    """What the root group hands every subcommand."""

    project_dir: Path


@dataclass(frozen=True)
class Project:
    """A model repository: a folder that holds (or will hold) mlgen.yaml."""

    root: Path

    @property
    def spec_path(self) -> Path:
        return self.root / SPEC_FILENAME

    def has_spec(self) -> bool:
        return self.spec_path.is_file()

    def load(self) -> Spec:
        """The spec; a missing or invalid mlgen.yaml is a SpecError (exit 2) naming the file."""
        from .monorepo import is_monorepo
        from .spec_loader import load_spec

        if is_monorepo(self.root):
            raise UsageError(f"{self.spec_path} lists the models of a monorepo: run this "
                             "command with -C MODEL_FOLDER (sync, check, render, validate, "
                             "`jenkins apply` and `sync --pr` act on all models from the root)")

        return load_spec(self.spec_path)

    def load_optional(self) -> Spec | None:
        """The spec if the folder has one, else None (commands that also work without one)."""
        return self.load() if self.has_spec() else None


def project_dir(ctx: click.Context) -> Path:
    """The folder the command acts on (the root group's -C)."""
    settings = ctx.find_object(Settings)
    return settings.project_dir if settings else Path(".")


def load_project(project_dir: Path) -> Spec:
    return Project(project_dir).load()


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
                     used_templates: dict[str, str] | None = None,
                     model_dir: str = "") -> list[Artifact]:
    """Every generated file for `spec`, sorted by path; deterministic for a given input.

    `model_dir` is the model's folder inside a monorepo ("" for a repository of one model);
    every template sees it, and the targets use it for paths that start at the repository
    root (path filters, working directories, the Jenkins script path, Argo CD's path).

    `used_templates`, when given, is filled with template name -> file for every template the
    render loaded (the lock file fingerprints exactly those, overrides included).
    """
    from .render import make_environment
    from .targets import TARGETS

    wanted = list(only) or list(spec.targets)
    unknown = [t for t in wanted if t not in TARGETS]
    if unknown:
        raise UsageError(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    env = make_environment(template_dirs(spec, project_dir, extra_templates))
    env.globals["model_dir"] = model_dir
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
