"""Target azure-pipelines: one azure-pipelines.yml (opt-in: list it in the spec's targets).

Like the other CI targets it is a function of the Spec (and the Jinja environment) alone,
with its path from the spec (`ci.azure.path`). In a monorepo the file lands in the model's
folder (`models/fraud/azure-pipelines.yml`, one Azure pipeline per model pointing at it), and
the template filters its triggers on that folder and runs every script there.
"""
from __future__ import annotations

import jinja2

from ..monorepo import place
from ..render import Artifact
from ..spec import Spec
from .common import model_dir_of, render_file


def render(spec: Spec, env: jinja2.Environment) -> list[Artifact]:
    model_dir = model_dir_of(env)
    # Where the file sits in the repository: its own path filter when outside the folder.
    placed = place(model_dir, spec.ci.azure.path) if model_dir else spec.ci.azure.path
    return [render_file(env, "azure-pipelines/azure-pipelines.yml.j2", spec.ci.azure.path,
                        spec, "azure-pipelines", pipeline_path=placed)]
