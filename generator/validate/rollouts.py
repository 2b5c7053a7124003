"""Argo Rollouts `Rollout`s (k8s/rollouts/rollout.yaml, kubernetes.challenger with engine
argo-rollouts) against the Rollout CRD's own schema.

The schema is the openAPIV3Schema of Argo Rollouts' `manifests/crds/rollout-crd.yaml`
(argo-rollout.schema.json beside this module; source commit and licence Apache-2.0 in its
`$comment` and in docs/canary.md), checked strictly as for the Argo CD Application
(mlgen.validate.crd). kubernetes-validate has no schema for the kind and only notes it as
"not validated"; this check is what validates it. On top of the schema, the rules the Argo
Rollouts controller applies before it acts on a Rollout (pkg/apis/rollouts/validation): a
template or a workloadRef but not both, one strategy, steps of one known kind, setWeight in
0-100, surge and unavailability not both 0, and the features that need a traffic router.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from .crd import check_files, check_stream, object_schema
from .model import Finding, ToolOutcome, Workspace

NAME = "rollouts-schema"
INSTALL = "pip install 'mlgen-pipelines[validate]' (or: pip install 'jsonschema>=4.20')"
SCHEMA_PATH = Path(__file__).with_name("argo-rollout.schema.json")
API_VERSION = "argoproj.io/v1alpha1"
STEP_KINDS = ("setWeight", "pause", "experiment", "analysis", "setCanaryScale",
              "setHeaderRoute", "setMirrorRoute", "plugin")
_ROUTED = ("setCanaryScale", "setHeaderRoute", "setMirrorRoute")  # need trafficRouting

Problems = list[tuple[tuple[Any, ...], str]]


def files(ws: Workspace) -> tuple[str, ...]:
    return ws.argo_rollouts


@lru_cache(maxsize=1)
def rollout_schema() -> dict[str, Any]:
    raw = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return object_schema(raw, API_VERSION, "Rollout")


def _canary_rules(canary: dict[str, Any]) -> Problems:
    at: tuple[Any, ...] = ("spec", "strategy", "canary")
    problems: Problems = []
    routed = isinstance(canary.get("trafficRouting"), dict)
    if canary.get("maxSurge", 1) in (0, "0%") and canary.get("maxUnavailable", 1) in (0, "0%"):
        problems.append((at, "maxSurge and maxUnavailable can not both be zero"))
    services = (canary.get("canaryService"), canary.get("stableService"))
    if all(services) and services[0] == services[1]:
        problems.append((at, "canaryService and stableService must be two different Services"))
    if routed and not all(services):
        problems.append((at + ("trafficRouting",),
                         "trafficRouting needs canaryService and stableService"))
    if not routed and canary.get("dynamicStableScale"):
        problems.append((at + ("dynamicStableScale",),
                         "dynamicStableScale can only be used with traffic routing"))
    for i, step in enumerate(canary.get("steps") or ()):
        where = (*at, "steps", i)
        kinds = [k for k in STEP_KINDS if isinstance(step, dict) and k in step]
        if len(kinds) != 1:
            problems.append((where, "a step needs exactly one of " + ", ".join(STEP_KINDS)))
            continue
        weight = step.get("setWeight")
        if weight is not None and isinstance(weight, int) and not 0 <= weight <= 100:
            problems.append((where + ("setWeight",), "setWeight must be between 0 and 100"))
        if kinds[0] in _ROUTED and not routed:
            problems.append((where, f"{kinds[0]} needs trafficRouting"))
    return problems


def _rollout_rules(doc: dict[str, Any]) -> Problems:
    spec: dict[str, Any] = doc["spec"] if isinstance(doc.get("spec"), dict) else {}
    problems: Problems = []
    ref, template = spec.get("workloadRef"), spec.get("template")
    if ref is not None and template:
        problems.append((("spec", "template"),
                         "template must be empty for a workloadRef Rollout"))
    if ref is None and not template:
        problems.append((("spec",), "a Rollout needs a template or a workloadRef"))
    if ref is None and not spec.get("selector"):
        problems.append((("spec",), "a Rollout without workloadRef needs a selector"))
    found = spec.get("strategy")
    strategy: dict[str, Any] = found if isinstance(found, dict) else {}
    chosen = [k for k in ("canary", "blueGreen") if k in strategy]
    if len(chosen) != 1:
        problems.append((("spec", "strategy"),
                         "a Rollout needs exactly one strategy, canary or blueGreen"))
    if isinstance(strategy.get("canary"), dict):
        problems += _canary_rules(strategy["canary"])
    return problems


def check_text(path: str, text: str) -> list[Finding]:
    """Every problem with the Rollout(s) in `text` (one YAML stream)."""
    return check_stream(path, text, NAME, "Rollout", rollout_schema(), _rollout_rules,
                        "argo-rollouts")


def check(ws: Workspace) -> ToolOutcome:
    return check_files(ws, files(ws), check_text)
