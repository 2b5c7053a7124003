"""What every target template sees: the Spec plus values derived from it in one place."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
from mlgen.models.contract import (
    LIVE_PATH,
    METRICS_PATH,
    MONITOR_METRICS_DIR,
    READY_PATH,
    SHADOW_URL_ENV,
)

from ..cron import max_interval_seconds
from ..render import Artifact, with_header
from ..spec import Spec
from ..spec_delivery import promote_timeout_minutes
from ..spec_types import duration_seconds

RUN_AS_USER = 10001


def context(spec: Spec) -> dict[str, Any]:
    stage_names = list(spec.model.stages)
    return {
        "spec": spec,
        "name": spec.name,
        "namespace": spec.namespace,
        "image_name": spec.image_name,
        "package": spec.name.replace("-", "_"),
        "live_path": LIVE_PATH,
        "ready_path": READY_PATH,
        "metrics_path": METRICS_PATH,  # the model server's contract (mlgen.models.contract)
        "run_as_user": RUN_AS_USER,
        # Stages that run before the gate (everything the user named), in the spec's order.
        "stages": stage_names,
        "has_test_stage": "test" in spec.model.stages,
        "has_train_stage": "train" in spec.model.stages,
        "junit_path": "reports/junit.xml",
        # The stale-drift-job alert fires after two missed runs, plus a quarter hour of slack.
        "stale_after_seconds": 2 * max_interval_seconds(spec.drift.schedule) + 900,
        "monitor_stale_after_seconds": 2 * max_interval_seconds(spec.monitor.schedule) + 900,
        # Under the request log: the monitor CronJob writes there, the server's /metrics reads.
        "monitor_textfile_folder": MONITOR_METRICS_DIR,
        "labels_stale_after_seconds": duration_seconds(spec.monitor.labels_stale_after),
        "promote": promote_in_cd(spec),
        # A shadow challenger's Service, which the champion's pods mirror requests to.
        "shadow_service": f"{spec.name}-shadow",
        "shadow_url_env": SHADOW_URL_ENV,
    }


@dataclass(frozen=True)
class PromoteInCd:
    """The CD pipelines' promote step after the deploys of the challenger's environments."""

    environments: tuple[str, ...]
    soak_seconds: int
    timeout_minutes: int  # the soak, checkout and install, and promote's rollout wait


def promote_in_cd(spec: Spec) -> PromoteInCd | None:
    """None without a challenger, and in GitOps mode: Argo CD owns the Deployments there, so
    `promote --apply` would be undone by self-heal (or leave the Application OutOfSync)."""
    challenger = spec.kubernetes.challenger
    if challenger is None or spec.kubernetes.gitops.enabled:
        return None
    return PromoteInCd(spec.kubernetes.challenger_environments,
                       duration_seconds(challenger.soak), promote_timeout_minutes(challenger))
def model_dir_of(env: jinja2.Environment) -> str:
    """The model's folder inside a monorepo, "" for a repository of one model (the render
    value `mlgen.project.render_artifacts` sets for every template)."""
    return str(env.globals.get("model_dir", ""))


def monitor_in_ci(spec: Spec) -> bool:
    """The pipelines' scheduled monitor job is rendered only when CI can read the predictions
    (monitor.predictions): the request log lives on the cluster's volume, where the monitor
    CronJob reads it."""
    return spec.monitor.enabled and spec.monitor.predictions is not None


def render_file(env: jinja2.Environment, template: str, path: str, spec: Spec, target: str,
                mode: int = 0o644, **extra: Any) -> Artifact:
    body = env.get_template(template).render(**context(spec), **extra)
    return Artifact(path=path, text=with_header(path, body), mode=mode, target=target)
