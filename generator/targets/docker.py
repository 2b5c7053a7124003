from __future__ import annotations

import jinja2

from ..render import Artifact
from ..spec import Spec
from .common import render_file


def render(spec: Spec, env: jinja2.Environment) -> list[Artifact]:
    dockerfile = spec.outputs.dockerfile
    folder = dockerfile.rpartition("/")[0]
    ignore = f"{folder}/.dockerignore" if folder else ".dockerignore"
    return [
        render_file(env, "docker/Dockerfile.j2", dockerfile, spec, "docker"),
        render_file(env, "docker/dockerignore.j2", ignore, spec, "docker"),
    ]
