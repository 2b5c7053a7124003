from __future__ import annotations

import json

import click


def spec_json_schema() -> dict[str, object]:
    from ..spec import Spec

    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlgen.yaml"
    schema["description"] = "The one file mlgen reads to render a model repository's pipelines."
    return schema


def schema_text() -> str:
    return json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n"


@click.command("schema")
def command() -> int:
    """Print the JSON Schema of mlgen.yaml (editors use it for completion)."""
    click.echo(schema_text(), nl=False)
    return 0
