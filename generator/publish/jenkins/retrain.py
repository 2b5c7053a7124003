"""The "jenkins" retrain hook: `mlgen drift` starts the model's Jenkins job with a reason.

Registered in `mlgen.publish.retrain.HOOKS` by import path, so nothing here is imported until a spec
sets `drift.retrain_hook: jenkins`. The connection comes from JENKINS_URL / JENKINS_USER /
JENKINS_API_TOKEN (and JENKINS_CA_BUNDLE), else the spec's ci.jenkins.url; the job is the one
`mlgen jenkins apply` registered (for a multibranch job, its default branch).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import MlgenError
from ...targets.jenkins_job import job_spec_from_spec

REASON_PARAMETER = "RETRAIN_REASON"  # declared by the generated Jenkinsfile
_MAX_REASON = 1000  # a query-string parameter: keep URLs well under proxies' limits


@dataclass(frozen=True)
class JenkinsRetrainHook:
    job: str
    spec_url: str | None
    start_timeout: float = 300.0

    def trigger(self, reason: str, details: dict[str, Any]) -> str:
        from ...integrations.jenkins import JenkinsClient, connection_from
        from ..retrain import RetrainError, reason_with_features
        from .jobs import trigger

        summary = reason_with_features(reason, details, _MAX_REASON)
        try:
            client = JenkinsClient(connection_from(url=None, user=None, token=None,
                                                   spec_url=self.spec_url))
            # Wait for the build number (a URL a person can follow), not for the retraining.
            outcome = trigger(client, self.job, {REASON_PARAMETER: summary},
                              timeout=self.start_timeout, poll=2.0, wait=False)
        except MlgenError as exc:
            raise RetrainError(f"jenkins retrain hook: {exc}") from exc
        return outcome.url or f"{self.job} #{outcome.number}"


def make_hook(spec: Any) -> JenkinsRetrainHook:
    if spec is None:
        raise MlgenError("the jenkins retrain hook needs the model's mlgen.yaml (run "
                         "`mlgen drift` with -C DIR) to know which job to start")
    job = job_spec_from_spec(spec)
    return JenkinsRetrainHook(job.build_target, spec.ci.jenkins.url)
