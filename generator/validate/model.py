"""The values `mlgen validate` passes around: findings, per-tool outcomes and the report."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Finding:
    """One problem a tool reported. Every finding fails validation (exit 1).

    `line` is 1-based, 0 when the tool does not say (kubernetes-validate reports per object).
    """

    file: str
    tool: str
    rule: str
    line: int
    message: str
    severity: str = "error"  # the tool's own word: error, warning, medium, high...

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "tool": self.tool, "rule": self.rule, "line": self.line,
                "message": self.message, "severity": self.severity}


@dataclass(frozen=True)
class Note:
    """Something checked less than fully, which is neither a pass nor a failure.

    Kinds: "not-validated" (no schema for a custom resource), "suppressed" (a check skipped
    by an inline annotation in the file, with its reason).
    """

    file: str
    tool: str
    kind: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "tool": self.tool, "kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class ToolRun:
    """How one tool fared: "ran" over `files`, or "skipped" because it is not installed."""

    tool: str
    status: str  # "ran" | "skipped" | "nothing-to-check"
    files: int = 0
    install: str = ""  # the command that installs the tool, when skipped
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"tool": self.tool, "status": self.status, "files": self.files}
        if self.status == "skipped":
            out["install"] = self.install
            out["reason"] = self.reason
        return out


class ToolMissing(Exception):
    """Raised by a tool wrapper when its executable (or runtime: node, java) is not found."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Workspace:
    """The files to check, relative to `root`, grouped by what checks them.

    `scratch` is a private temporary folder for built kustomize output and the like.
    """

    root: Path
    scratch: Path
    yaml_files: tuple[str, ...] = ()
    workflows: tuple[str, ...] = ()
    dockerfiles: tuple[str, ...] = ()
    jenkinsfiles: tuple[str, ...] = ()
    k8s_resources: tuple[str, ...] = ()  # manifests, not kustomization files
    k8s_overlays: tuple[str, ...] = ()  # folders holding an overlay's kustomization.yaml
    argocd_applications: tuple[str, ...] = ()  # Argo CD Application manifests
    azure_pipelines: tuple[str, ...] = ()  # the azure-pipelines target's pipeline file
    argo_rollouts: tuple[str, ...] = ()  # Argo Rollouts Rollout manifests
    kubernetes_version: str = "1.35"


@dataclass(frozen=True)
class ToolOutcome:
    findings: list[Finding] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    files: int = 0


@dataclass(frozen=True)
class Report:
    findings: list[Finding]
    notes: list[Note]
    tools: list[ToolRun]

    @property
    def skipped(self) -> list[ToolRun]:
        return [t for t in self.tools if t.status == "skipped"]

    @property
    def clean(self) -> bool:
        """No finding and every tool ran: the only state ever called "clean"."""
        return not self.findings and not self.skipped

    def passed(self, require_all: bool = False) -> bool:
        """Exit 0: no finding, and no skipped tool when every tool is required."""
        return not self.findings and not (require_all and self.skipped)

    def as_dict(self, require_all: bool = False) -> dict[str, object]:
        return {
            "clean": self.clean,
            "passed": self.passed(require_all),
            "require_all": require_all,
            "skipped": [t.tool for t in self.skipped],
            "findings": [f.as_dict() for f in self.findings],
            "tools": [t.as_dict() for t in self.tools],
            "notes": [n.as_dict() for n in self.notes],
        }
