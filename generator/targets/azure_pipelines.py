"""Target azure-pipelines: one azure-pipelines.yml (opt-in: list it in the spec's targets).

Like the other CI targets it is a function of the Spec (and the Jinja environment) alone,
with its path from the spec (`ci.azure.path`), so per-model folders can be added the same way
for every target.
"""
from __future__ import annotations

import jinja2

from ..render import Artifact
from ..spec import Spec
from .common import render_file


def render(spec: Spec, env: jinja2.Environment) -> list[Artifact]:
    return [render_file(env, "azure-pipelines/azure-pipelines.yml.j2", spec.ci.azure.path,
                        spec, "azure-pipelines")]
