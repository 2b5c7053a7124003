from __future__ import annotations

import jinja2

from ..render import Artifact
from ..spec import Spec
from .common import monitor_in_ci, render_file

WORKFLOWS = ("ci", "cd", "drift")


def render(spec: Spec, env: jinja2.Environment) -> list[Artifact]:
    if not spec.ci.github.actions:
        return []
    folder = spec.outputs.workflows
    out = [render_file(env, f"github-actions/{name}.yml.j2", f"{folder}/{name}.yml", spec,
                       "github-actions") for name in WORKFLOWS if name != "drift"]
    if spec.drift.enabled:
        out.append(render_file(env, "github-actions/drift.yml.j2", f"{folder}/drift.yml", spec,
                               "github-actions"))
    if monitor_in_ci(spec):
        out.append(render_file(env, "github-actions/monitor.yml.j2", f"{folder}/monitor.yml",
                               spec, "github-actions"))
    return out

