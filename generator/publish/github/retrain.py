"""The "github" retrain hook: `mlgen drift` dispatches the generated drift-retrain workflow.

Registered in `mlgen.publish.retrain.HOOKS` by import path, so PyGithub is imported only when a spec
sets `drift.retrain_hook: github`. Credentials as for every GitHub command (GITHUB_TOKEN or a
GitHub App, GITHUB_API_URL); the repository and branch come from the spec's ci.github.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from ...errors import MlgenError

WORKFLOW_FILE = "drift.yml"  # rendered by the github-actions target from drift.yml.j2
_MAX_INPUT = 1000  # workflow_dispatch inputs are strings; keep the reason readable


@dataclass(frozen=True)
class GitHubRetrainHook:
    repository: str
    ref: str
    workflow: str = WORKFLOW_FILE

    def trigger(self, reason: str, details: dict[str, Any]) -> str:
        from ...integrations.github import client as gh
        from ..retrain import RetrainError, reason_with_features

        summary = reason_with_features(reason, details, _MAX_INPUT)
        try:
            return gh.dispatch_workflow(gh.connect(), self.repository, self.workflow, self.ref,
                                        {"reason": summary})
        except MlgenError as exc:
            raise RetrainError(f"github retrain hook: {exc}") from exc


def make_hook(spec: Any) -> GitHubRetrainHook:
    """The hook for a loaded spec; a monorepo model's ConfigMap names its own drift workflow
    (`<model>-drift.yml`) in MLGEN_GITHUB_DRIFT_WORKFLOW."""
    repository = getattr(getattr(getattr(spec, "ci", None), "github", None), "repository", None)
    if not repository:
        raise MlgenError("the github retrain hook needs ci.github.repository in mlgen.yaml "
                         "(OWNER/NAME of the repository whose drift workflow to dispatch)")
    workflow = os.environ.get("MLGEN_GITHUB_DRIFT_WORKFLOW") or WORKFLOW_FILE
    if not re.fullmatch(r"[A-Za-z0-9_.-]+\.ya?ml", workflow):
        raise MlgenError(f"MLGEN_GITHUB_DRIFT_WORKFLOW={workflow!r}: expected a workflow file "
                         "name such as fraud-drift.yml")
    return GitHubRetrainHook(repository, spec.ci.github.default_branch, workflow)
