"""`mlgen schema --root`: the root spec's JSON Schema, every key described, and held to the
hand check in mlgen.monorepo (what one refuses before looking at the disk, so does the other)."""
from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml
from mlgen.monorepo import ROOT_KEYS
from mlgen.spec_root import RootSpec

from tests.helpers import run_mlgen

from .conftest import MONOREPO
from .test_root_spec import BAD


def _root_schema() -> dict[str, Any]:
    result = run_mlgen("schema", "--root")
    assert result.returncode == 0, result.stderr
    schema: dict[str, Any] = json.loads(result.stdout)
    return schema


def test_every_root_key_is_described_on_one_line() -> None:
    schema = _root_schema()
    properties = dict(schema["properties"])
    for name, body in schema.get("$defs", {}).items():
        properties.update({f"{name}.{key}": prop for key, prop in body["properties"].items()})
    assert sorted(properties) == ["RootDiscover.discover", "apiVersion", "models"]
    for path, prop in properties.items():
        text = str(prop.get("description", ""))
        assert text.strip() and "\n" not in text, path
    assert schema["required"] == ["apiVersion", "models"]
    assert schema["additionalProperties"] is False


def test_the_schema_names_the_keys_the_hand_check_takes() -> None:
    assert tuple(_root_schema()["properties"]) == ROOT_KEYS
    assert tuple(f.alias or n for n, f in RootSpec.model_fields.items()) == ROOT_KEYS


def test_the_example_and_the_discover_form_pass() -> None:
    validator = jsonschema.Draft202012Validator(_root_schema())
    for text in ((MONOREPO / "mlgen.yaml").read_text(),
                 'apiVersion: mlgen/v1\nmodels: {discover: "models/*"}\n',
                 "apiVersion: mlgen/v1\nmodels: [models/fraud/, team_a/rent@v2]\n"):
        data = yaml.safe_load(text)
        assert list(validator.iter_errors(data)) == [], text
        RootSpec.model_validate(data)


# The hand check's refusals that need the disk (a missing spec, a duplicate, an empty glob)
# are beyond a schema; every other one the schema refuses too.
DISK_ONLY = ("has no mlgen.yaml", "listed twice", "no folder matching")


@pytest.mark.parametrize("body", [b[0] for b in BAD if b[3] not in DISK_ONLY])
def test_what_the_hand_check_refuses_the_schema_refuses(body: str) -> None:
    data = yaml.safe_load(f"apiVersion: mlgen/v1\n{body}\n")
    assert list(jsonschema.Draft202012Validator(_root_schema()).iter_errors(data)), body


def test_the_schema_refuses_another_api_version() -> None:
    data = {"apiVersion": "mlgen/v2", "models": ["models/fraud"]}
    assert list(jsonschema.Draft202012Validator(_root_schema()).iter_errors(data))


def test_the_example_carries_the_root_schema_for_editors() -> None:
    written = json.loads((MONOREPO / ".mlgen" / "mlgen-root.schema.json").read_text())
    assert written == _root_schema()
    first = (MONOREPO / "mlgen.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=.mlgen/mlgen-root.schema.json"


def test_the_model_schema_is_unchanged_by_root() -> None:
    plain = json.loads(run_mlgen("schema").stdout)
    assert plain["title"] == "mlgen.yaml" and "name" in plain["properties"]
