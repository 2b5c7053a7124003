"""The spec's delivery sections: a challenger model served beside the champion (canary or
shadow), and GitOps delivery through Argo CD.

Kept apart from `spec_runtime.py` (serve, kubernetes, drift) to keep each module short;
`Kubernetes.challenger` and `Kubernetes.gitops` hold them. See docs/canary.md and
docs/gitops.md for what is rendered.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .spec_types import DnsLabel, Duration, Strict, duration_seconds


class ChallengerThresholds(Strict):
    """What the challenger's live metrics must meet for `mlgen promote` to promote it; any
    one failed rolls it back."""

    max_error_rate: float = Field(0.01, ge=0, le=1)
    """Highest share of the challenger's prediction requests answered with a 5xx status."""
    max_latency_p95_ms: float = Field(250.0, gt=0)
    """Highest 95th percentile of the challenger's prediction latency, in milliseconds (from
    the server's latency histogram, interpolated inside a bucket as Prometheus does)."""
    max_prediction_psi: float = Field(0.2, gt=0)
    """Highest population stability index between the champion's and the challenger's
    prediction distributions (score histogram, value histogram for regression, or predicted
    classes); 0.1-0.2 is a moderate shift, above 0.25 a large one."""
    min_requests: int = Field(100, ge=1)
    """Fewest prediction requests the challenger must have answered before promote decides;
    fewer is unusable input (exit 2), never a promotion."""


class Challenger(Strict):
    """A challenger model served beside the champion in a second Deployment NAME-challenger:
    as a canary behind the same Service (a share of the requests, following the replica
    ratio; with engine argo-rollouts, an Argo Rollouts canary), or as a shadow that gets a copy
    of the champion's requests and answers nobody."""

    image_tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    """Image tag (the model version under test) the challenger Deployment runs, from the
    same repository as the champion (required)."""
    mode: Literal["canary", "shadow"] = "canary"
    """canary: the Service sends the challenger a share of the requests (`weight`) and its
    answers go back to the clients. shadow: the Service never selects it; each champion pod
    mirrors its prediction requests to the challenger after answering them (header
    x-mlgen-shadow: 1), and the challenger's answers are only logged and counted (in
    REQUEST_LOG/shadow/ and /metrics), never returned. No `weight` in shadow mode: the
    challenger gets every request the champion can mirror, and runs as many pods as the
    champion's minimum. See docs/canary.md."""
    weight: int = Field(10, ge=1, le=50)
    """Percent of requests the challenger should get. The Service balances over pods, so the
    share is approximate: challenger replicas are round(champion * weight / (100 - weight)),
    at least 1, and the real share is challenger / (champion + challenger) pods."""
    environments: tuple[DnsLabel, ...] | None = None
    """Environments whose overlay runs the challenger; default: the last one (production).
    Each must be listed in kubernetes.environments."""
    thresholds: ChallengerThresholds = Field(default_factory=ChallengerThresholds)
    """Limits `mlgen promote` checks the challenger against."""
    engine: Literal["kubernetes", "argo-rollouts"] = "kubernetes"
    """What runs the canary. kubernetes: the second Deployment NAME-challenger described
    above, nothing to install in the cluster. argo-rollouts: an Argo Rollouts `Rollout` NAME
    (workloadRef to the Deployment, whose pod template then runs image_tag) with the steps
    setWeight: weight and an indefinite pause that `mlgen promote --apply` promotes or
    aborts (Argo gives the canary weight percent of the Rollout's replicas, not extra pods);
    needs the Argo Rollouts controller and CRDs in the cluster. Argo runs the steps
    only when the template changes while a stable revision exists: see docs/canary.md."""
    soak: Duration = "30m"
    """How long the challenger serves beside the freshly deployed champion before the CD
    pipeline decides (30m, 2h; at most 5h, which keeps the job under GitHub-hosted runners'
    6-hour limit). For each environment with the challenger, the pipelines render a promote
    job (Actions) or stage (Jenkins) after its deploy: wait the soak time, then
    `mlgen promote ENV --from-cluster --apply --json`; a rollback (exit 1) fails it. Not
    rendered with kubernetes.gitops.enabled: Argo CD owns the Deployments there and would undo
    the change, so run promote without --apply and make the change in Git."""

    @field_validator("weight")
    @classmethod
    def _weight_is_canary_only(cls, weight: int, info: ValidationInfo) -> int:
        # Runs only when weight is given: a shadow takes no share of the Service's traffic.
        if info.data.get("mode") == "shadow":
            raise ValueError("applies only to mode: canary; a shadow challenger gets a copy "
                             "of every request the champion can mirror (remove weight)")
        return weight

    @field_validator("engine")
    @classmethod
    def _argo_runs_canaries_only(cls, engine: str, info: ValidationInfo) -> str:
        # Argo Rollouts mirrors traffic only through a traffic router, which mlgen does not
        # render; mlgen's shadow is the champion server's own mirroring.
        if engine == "argo-rollouts" and info.data.get("mode") == "shadow":
            raise ValueError("argo-rollouts runs canaries only; a shadow challenger uses "
                             "engine: kubernetes (the champion's server mirrors to it)")
        return engine

    @field_validator("soak")
    @classmethod
    def _soak_fits_a_job(cls, soak: str) -> str:
        if duration_seconds(soak) > MAX_SOAK_SECONDS:
            raise ValueError(f"{soak} is longer than 5h: the pipeline job that waits it out "
                             "would pass GitHub-hosted runners' 6-hour job limit")
        return soak


MAX_SOAK_SECONDS = 5 * 3600
# The promote job's time beyond the soak: checkout and install, scraping, and promote's own
# rollout wait (--rollout-timeout, 10 minutes by default).
PROMOTE_SLACK_MINUTES = 30


def promote_timeout_minutes(challenger: Challenger) -> int:
    """The CD promote job's timeout: the soak plus the slack."""
    return -(-duration_seconds(challenger.soak) // 60) + PROMOTE_SLACK_MINUTES


def challenger_replicas(champion: int, weight: int) -> int:
    """Challenger pods that give about `weight` percent of a Service's traffic."""
    return max(1, round(champion * weight / (100 - weight)))


# A Git URL Argo CD can pull: https://host/path, ssh://[user@]host/path or the scp-like
# git@host:path. No whitespace or shell/YAML specials. The pattern lets https userinfo through
# so that the validator below refuses it without the value (a token) in the message.
GIT_URL_RE = (r"^(https://([^@/\s]+@)?[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/-]+"
              r"|ssh://([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/-]+"
              r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/-]+)$")
GitUrl = Annotated[str, StringConstraints(pattern=GIT_URL_RE, max_length=2048)]
# Argo CD's in-cluster destination: the cluster Argo CD itself runs in.
IN_CLUSTER = "https://kubernetes.default.svc"
ClusterUrl = Annotated[str, StringConstraints(pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?"
                                                      r"(/[A-Za-z0-9._~/-]*)?$")]
# A Git ref Argo CD tracks: a branch, a tag, HEAD or a commit.
GitRevision = Annotated[str, StringConstraints(
    pattern=r"^(?!/)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]+(?<!/)(?<!\.lock)$", max_length=255)]


class GitOps(Strict):
    """GitOps delivery with Argo CD: an Application per environment that syncs the overlay
    from Git (k8s/argocd/ENV.yaml), and CD pipelines that commit the pushed image digest into
    the overlay (`mlgen gitops pin`) instead of applying it (`mlgen deploy`)."""

    enabled: bool = False
    """Render the Argo CD Applications and switch the pipelines' deploy stages to
    `mlgen gitops pin ENV --commit --push`."""
    repo_url: GitUrl | None = None
    """The Git repository Argo CD pulls the overlays from: this model repository's clone URL
    (https://..., ssh://... or git@host:path). Required when enabled. No credentials in it:
    Argo CD holds the repository's credentials itself."""
    target_revision: GitRevision | None = None
    """Branch (or tag, or HEAD) Argo CD tracks and the pipelines push the pinned digest to;
    default: ci.github.default_branch."""
    argocd_namespace: DnsLabel = "argocd"
    """Namespace of the Application objects: where Argo CD runs (or one of its
    application namespaces)."""
    project: DnsLabel = "default"
    """Argo CD project (AppProject) the Applications belong to; it decides which
    repositories, clusters and namespaces they may use."""
    sync: Literal["automated", "manual"] = "automated"
    """automated: Argo CD syncs each commit of the overlay by itself; manual: a person syncs
    in Argo CD (the pin commit only marks the Application OutOfSync)."""
    prune: bool = True
    """With automated sync: delete objects that left the overlay (a disabled drift job's
    CronJob, say)."""
    self_heal: bool = True
    """With automated sync: undo changes made in the cluster by hand (kubectl edit), so the
    cluster keeps matching Git."""
    clusters: dict[DnsLabel, ClusterUrl] = Field(default_factory=dict)
    """API server URL of each environment's cluster as registered in Argo CD, keyed by
    environment; default: the cluster Argo CD runs in (https://kubernetes.default.svc)."""

    @field_validator("repo_url")
    @classmethod
    def _no_credentials(cls, url: str | None) -> str | None:
        # https://user:token@host would land in a committed file; scp-like git@host is fine.
        if url is not None and url.startswith("https://") and "@" in url:
            raise ValueError("must not carry credentials (user:token@host): register the "
                             "repository's credentials in Argo CD instead")
        return url

    @model_validator(mode="after")
    def _complete(self) -> GitOps:
        if self.enabled and self.repo_url is None:
            raise ValueError("repo_url is required when gitops is enabled (the repository "
                             "Argo CD pulls the overlays from)")
        if self.sync == "manual":
            given = sorted({"prune", "self_heal"} & self.model_fields_set)
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise ValueError(f"{' and '.join(given)} only {verb} to sync: automated "
                                 "(a manual sync prunes and heals as the person chooses)")
        return self
