"""Argo CD Applications (k8s/argocd/ENV.yaml) against the Application CRD's own schema.

kubernetes-validate ships no schemas for custom resources, so mlgen vendors the
openAPIV3Schema of Argo CD's `manifests/crds/application-crd.yaml` (argocd-application.schema
.json beside this module; source, commit and licence in its `$comment` and in
docs/gitops.md) and checks each Application with jsonschema, strictly as `kubectl apply
--validate=strict` would (mlgen.validate.crd). On top of the schema, the rules Argo CD's
controller applies before it accepts an Application (one source, a destination by server or
by name).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from .crd import check_files, check_stream, object_schema
from .model import Finding, ToolOutcome, Workspace

NAME = "argocd-schema"
INSTALL = "pip install 'mlgen-pipelines[validate]' (or: pip install 'jsonschema>=4.20')"
SCHEMA_PATH = Path(__file__).with_name("argocd-application.schema.json")
API_VERSION = "argoproj.io/v1alpha1"


def files(ws: Workspace) -> tuple[str, ...]:
    return ws.argocd_applications


@lru_cache(maxsize=1)
def application_schema() -> dict[str, Any]:
    raw = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return object_schema(raw, API_VERSION, "Application")


def _argocd_rules(doc: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    spec: dict[str, Any] = doc["spec"] if isinstance(doc.get("spec"), dict) else {}
    problems: list[tuple[tuple[str, ...], str]] = []
    sources = [key for key in ("source", "sources", "sourceHydrator") if key in spec]
    if len(sources) != 1:
        has = ", ".join(sources) or "none"
        message = f"an Application needs exactly one of source, sources or sourceHydrator " \
                  f"(has: {has})"
        problems.append((("spec",), message))
    dest = spec.get("destination")
    if isinstance(dest, dict) and ("server" in dest) == ("name" in dest):
        problems.append((("spec", "destination"),
                         "destination needs exactly one of server or name"))
    return problems


def check_text(path: str, text: str) -> list[Finding]:
    """Every problem with the Application(s) in `text` (one YAML stream)."""
    return check_stream(path, text, NAME, "Application", application_schema(), _argocd_rules,
                        "argocd")


def check(ws: Workspace) -> ToolOutcome:
    return check_files(ws, files(ws), check_text)
