from __future__ import annotations

import jinja2

from ..render import Artifact
from ..spec import Spec
from .common import model_dir_of, monitor_in_ci, render_file

WORKFLOWS = ("ci", "cd", "drift")


def render(spec: Spec, env: jinja2.Environment) -> list[Artifact]:
    if not spec.ci.github.actions:
        return []
    folder = spec.outputs.workflows
    # In a monorepo every model's workflows sit side by side in the root's .github/workflows
    # (GitHub reads no other folder), so their file names carry the model's name.
    prefix = f"{spec.name}-" if model_dir_of(env) else ""
    names = [name for name in WORKFLOWS if name != "drift" or spec.drift.enabled]
    if monitor_in_ci(spec):
        names.append("monitor")
    return [render_file(env, f"github-actions/{name}.yml.j2", f"{folder}/{prefix}{name}.yml",
                        spec, "github-actions", workflow_path=f"{folder}/{prefix}{name}.yml")
            for name in names]
