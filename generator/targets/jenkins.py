from __future__ import annotations

import jinja2

from ..render import Artifact
from ..spec import Spec
from .common import monitor_in_ci, render_file


def render(spec: Spec, env: jinja2.Environment) -> list[Artifact]:
    out = [render_file(env, "jenkins/Jenkinsfile.j2", spec.outputs.jenkinsfile, spec, "jenkins")]
    if monitor_in_ci(spec):
        # Its own pipeline: a timer in the main Jenkinsfile would also build and deploy.
        out.append(render_file(env, "jenkins/Jenkinsfile.monitor.j2",
                               spec.outputs.jenkinsfile + ".monitor", spec, "jenkins"))
    return out
