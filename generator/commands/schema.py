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


def _one_line_descriptions(node: Any) -> Any:
    """Descriptions come from docstrings wrapped to the source's line length: editors show
    them in narrow hovers, so each becomes one line of text for the editor to wrap."""
    if isinstance(node, list):
        return [_one_line_descriptions(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: " ".join(value.split()) if key == "description" and isinstance(value, str)
            else _one_line_descriptions(value) for key, value in node.items()}


def schema_text() -> str:
    return json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n"


@click.command("schema")
def command() -> int:
    """Print the JSON Schema of mlgen.yaml (editors use it for completion)."""
    click.echo(schema_text(), nl=False)
    return 0
