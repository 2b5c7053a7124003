"""The root mlgen.yaml of a monorepo as pydantic models: the source of `mlgen schema --root`,
of the spec reference's root section and of `.mlgen/mlgen-root.schema.json` for editors.

`mlgen.monorepo.model_folders` still checks a root spec by hand: it needs the file system
(each folder must hold an mlgen.yaml, `discover:` must find one) and names the file, key and
line of each problem. These models state the same keys and shapes, so what the schema accepts
is what the check accepts before it looks at the disk (tests/monorepo/test_root_schema.py
holds the two together).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .spec_types import Strict

# The folder rule of mlgen.monorepo (_FOLDER_RE), a trailing '/' allowed: each part starts
# with a letter, digit or '_', so '.' and '..' cannot be parts.
FOLDER_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*(/[A-Za-z0-9_][A-Za-z0-9_.@+-]*)*/?$"
# mlgen.monorepo's glob rule: its characters, no '/' at the start, no '..' part.
GLOB_PATTERN = r"^(?!/)(?!(.*/)?\.\.(/|$))[A-Za-z0-9_*?.@+/-]+$"

Folder = Annotated[str, StringConstraints(pattern=FOLDER_PATTERN)]
Glob = Annotated[str, StringConstraints(pattern=GLOB_PATTERN)]


class RootDiscover(Strict):
    """Take every folder matching a glob that holds an mlgen.yaml, sorted by path."""

    discover: Glob
    """A glob relative to the repository root, such as `models/*`: each matching folder
    with an mlgen.yaml is a model (no '/' at the start, no '..'). At least one must match."""


class RootSpec(Strict):
    """The root mlgen.yaml of a monorepo: the folders of its models, each with its own
    mlgen.yaml. It takes only these keys; everything about a model goes in its folder's
    spec."""

    api_version: Literal["mlgen/v1"] = Field(alias="apiVersion")
    """Spec format: mlgen/v1."""
    models: Annotated[list[Folder], Field(min_length=1)] | RootDiscover
    """The model folders: a list of folders relative to this file (each listed once, not
    nested in another, holding an mlgen.yaml; no leading '/', no '.' or '..', no spaces or
    shell characters), or `{discover: GLOB}` to take every matching folder that has one."""
