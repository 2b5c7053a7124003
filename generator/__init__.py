"""mlgen: one mlgen.yaml in, every pipeline file of an ML model repository out."""
from __future__ import annotations

__version__ = "0.1.0"

# The name on the package index. The command and the import package are `mlgen`, but PyPI's
# `mlgen` is an unrelated project, so every install step mlgen writes or prints names this.
DISTRIBUTION = "mlgen-pipelines"


def requirement(extra: str) -> str:
    """The pip requirement for this exact mlgen with `extra`, e.g. mlgen-pipelines[all]==0.1.0."""
    return f"{DISTRIBUTION}[{extra}]=={__version__}"
