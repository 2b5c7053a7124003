from __future__ import annotations

import jinja2

from ..render import Artifact
from ..spec import Spec
from .common import render_file


def render(spec: Spec, env: jinja2.Environment) -> list[Artifact]:
    return [render_file(env, "jenkins/Jenkinsfile.j2", spec.outputs.jenkinsfile, spec, "jenkins")]
