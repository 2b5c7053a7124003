"""The starter project `mlgen init` writes once: after that the files are the user's.

Every file under templates/scaffold/project/ is rendered; `__package__` in a path becomes the
Python package name (the model name with '-' as '_'), and a `.j2` suffix is dropped.
"""
from __future__ import annotations

import jinja2

from .render import Artifact
from .spec import Spec
from .targets.common import context

SCAFFOLD_ROOT = "scaffold/project"
EXECUTABLE_SUFFIXES = (".sh",)


def scaffold_artifacts(spec: Spec, env: jinja2.Environment) -> list[Artifact]:
    package = spec.name.replace("-", "_")
    names = sorted(n for n in env.list_templates() if n.startswith(SCAFFOLD_ROOT + "/")
                   and "__pycache__" not in n and not n.endswith(".pyc"))
    out = []
    for name in names:
        rel = name[len(SCAFFOLD_ROOT) + 1:].replace("__package__", package)
        if rel.endswith(".j2"):
            rel = rel[:-3]
            text = env.get_template(name).render(**context(spec))
        else:
            text = _raw(env, name)
        mode = 0o755 if rel.endswith(EXECUTABLE_SUFFIXES) else 0o644
        out.append(Artifact(path=rel, text=text, mode=mode, target="scaffold"))
    return out


def _raw(env: jinja2.Environment, name: str) -> str:
    if env.loader is None:
        raise TypeError("the scaffold environment has no template loader")
    source, _, _ = env.loader.get_source(env, name)
    return source


