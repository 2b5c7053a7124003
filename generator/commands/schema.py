from __future__ import annotations

import json
from typing import Any

import click
from mlgen.models.contract import SPEC_FILENAME


def spec_json_schema() -> dict[str, object]:
    from ..spec import Spec

    schema: dict[str, object] = _one_line_descriptions(
        Spec.model_json_schema(by_alias=True, mode="validation")
    )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = SPEC_FILENAME
    schema["description"] = "The one file mlgen reads to render a model repository's pipelines."
    return schema


def root_json_schema() -> dict[str, object]:
    """The schema of a monorepo's root mlgen.yaml (the one with `models:`)."""
    from ..spec_root import RootSpec

    schema: dict[str, object] = _one_line_descriptions(
        RootSpec.model_json_schema(by_alias=True, mode="validation")
    )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"{SPEC_FILENAME} (monorepo root)"
    schema["description"] = ("The root mlgen.yaml of a monorepo: the folders of its models, "
                             "each with its own mlgen.yaml.")
    return schema


def _one_line_descriptions(node: Any) -> Any:
    """Descriptions come from docstrings wrapped to the source's line length: editors show
    them in narrow hovers, so each becomes one line of text for the editor to wrap."""
    if isinstance(node, list):
        return [_one_line_descriptions(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: " ".join(value.split()) if key == "description" and isinstance(value, str)
            else _one_line_descriptions(value) for key, value in node.items()}


def schema_text(root: bool = False) -> str:
    schema = root_json_schema() if root else spec_json_schema()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


@click.command("schema")
@click.option("--root", is_flag=True,
              help="The schema of a monorepo's root mlgen.yaml (the one with `models:`).")
def command(root: bool) -> int:
    """Print the JSON Schema of mlgen.yaml (editors use it for completion).

    With --root, the schema of a monorepo's root mlgen.yaml instead.
    """
    click.echo(schema_text(root), nl=False)
    return 0
