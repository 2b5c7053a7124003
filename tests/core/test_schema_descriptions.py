"""Every key of mlgen.yaml is described in `mlgen schema`: editors show the text on hover and
in completion, so a key without one is a key a user has to look up elsewhere."""
from __future__ import annotations

import json
from typing import Any

from tests.helpers import run_mlgen


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """key path -> property schema, for the root and every definition."""
    out = {name: prop for name, prop in schema.get("properties", {}).items()}
    for definition, body in schema.get("$defs", {}).items():
        out.update({f"{definition}.{name}": prop
                    for name, prop in body.get("properties", {}).items()})
    return out


def test_every_property_of_every_definition_has_a_description() -> None:
    result = run_mlgen("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    properties = _properties(schema)
    assert len(properties) >= 100  # the walk sees the whole spec, not just the root
    missing = sorted(path for path, prop in properties.items()
                     if not str(prop.get("description", "")).strip())
    assert missing == [], f"{len(missing)} of {len(properties)} keys have no description: {missing}"


def test_replicas_says_autoscaling_overrides_it() -> None:
    schema = json.loads(run_mlgen("schema").stdout)
    for definition in ("Serve", "Overlay"):
        text = schema["$defs"][definition]["properties"]["replicas"]["description"]
        assert "with autoscaling on" in text.lower() and "ignored" in text, text
        assert "serve.autoscaling.enabled" in text and "\n" not in text, text
