"""Targets turn a Spec into Artifacts. One module per target, a plain registry dict.

Every target is a function `(spec, env) -> list[Artifact]`; a target never touches the disk
or a server, so rendering is deterministic and testable alone.
"""
from __future__ import annotations

from collections.abc import Callable

import jinja2

from ..render import Artifact
from ..spec import Spec
from . import azure_pipelines, docker, github_actions, jenkins, kubernetes

RenderTarget = Callable[[Spec, jinja2.Environment], list[Artifact]]

TARGETS: dict[str, RenderTarget] = {
    "jenkins": jenkins.render,
    "github-actions": github_actions.render,
    "docker": docker.render,
    "kubernetes": kubernetes.render,
    "azure-pipelines": azure_pipelines.render,
}
