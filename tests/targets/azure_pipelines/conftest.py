"""Specs the azure-pipelines tests render: the examples' and variants of the credit-risk one."""
from __future__ import annotations

import copy
from typing import Any

import yaml
from mlgen.project import render_artifacts
from mlgen.spec import Spec

from tests.helpers import EXAMPLES

CREDIT_RISK: dict[str, Any] = yaml.safe_load((EXAMPLES / "credit-risk" / "mlgen.yaml").read_text())
HOSTILE = "$(System.AccessToken) ${{ variables.x }} $[ variables.y ] `id` $(whoami) '\"\n#"


def variant(**changes: Any) -> dict[str, Any]:
    """The credit-risk spec with dotted keys replaced: variant(**{"ci.azure.pool": "p"})."""
    data = copy.deepcopy(CREDIT_RISK)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return data


def pipeline_text(data: dict[str, Any]) -> str:
    spec = Spec.model_validate(data)
    [artifact] = [a for a in render_artifacts(spec, EXAMPLES) if a.target == "azure-pipelines"]
    return artifact.text


def hostile_spec() -> dict[str, Any]:
    """Every free-text field the spec has, holding Azure macros and expressions."""
    data = variant(**{"description": HOSTILE, "owner": HOSTILE.replace("\n", " "),
                      "drift.current": "data/$(System.AccessToken)/now.csv",
                      "kubernetes.annotations": {"bank.example.com/note": HOSTILE},
                      "serve.env": {"LOG_LEVEL": HOSTILE}})
    data["model"]["stages"] = {name: f"{command} {HOSTILE}"
                               for name, command in data["model"]["stages"].items()}
    return data
