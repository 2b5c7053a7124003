"""The spec's runtime sections: how the model is served (`serve`), deployed to Kubernetes
(`kubernetes`) and watched for data drift (`drift`). See `spec.py` for the whole Spec.

Each field's docstring is its description in `mlgen schema`: say what the key changes in the
generated files or at run time, in terms a user of the spec can check.
"""
from __future__ import annotations

from typing import Annotated, Literal

from mlgen.models import contract as c
from pydantic import Field, StringConstraints, field_validator, model_validator

from .spec_delivery import Challenger, GitOps
from .spec_types import (
    DURATION_RE,
    DnsLabel,
    EnvName,
    LabelKey,
    LabelValue,
    Quantity,
    RelPath,
    ResourceName,
    Strict,
)

HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s'\"\\`$]+$")]


def _default_requests() -> dict[ResourceName, str]:
    return {"cpu": "500m", "memory": "512Mi"}


def _default_limits() -> dict[ResourceName, str]:
    return {"cpu": "1", "memory": "1Gi"}


class Resources(Strict):
    """Kubernetes resource requests and limits of a container."""

    requests: dict[ResourceName, Quantity] = Field(default_factory=_default_requests)
    """What the scheduler reserves per pod (cpu, memory, ephemeral-storage), as Kubernetes
    quantities such as 500m or 512Mi. Applies to the server and the drift CronJob."""
    limits: dict[ResourceName, Quantity] = Field(default_factory=_default_limits)
    """The most a pod may use (cpu, memory, ephemeral-storage); over the memory limit it is
    killed. Applies to the server and the drift CronJob."""


class Autoscaling(Strict):
    """The HorizontalPodAutoscaler of the server Deployment."""

    enabled: bool = True
    """Render a HorizontalPodAutoscaler (k8s/base/hpa.yaml) that scales the server on CPU; the
    Deployment then sets no replica count, so `replicas` is ignored."""
    min: int = Field(2, ge=1, le=1000)
    """Fewest server pods the autoscaler keeps (HPA minReplicas)."""
    max: int = Field(10, ge=1, le=1000)
    """Most server pods the autoscaler starts (HPA maxReplicas); at least `min`."""
    cpu_utilization: int = Field(70, ge=1, le=100)
    """Average CPU use, in percent of the CPU request, that the autoscaler aims for."""

    @model_validator(mode="after")
    def _order(self) -> Autoscaling:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not be greater than max ({self.max})")
        return self


class RequestLog(Strict):
    """The server's sampled request log: the rows `mlgen drift` compares with the reference."""

    path: str = Field(c.REQUEST_LOG_DIR, pattern=r"^/[A-Za-z0-9_./-]*$")
    """Absolute folder in the container where the server writes requests.jsonl. The image
    creates it for the non-root user; on Kubernetes a PersistentVolumeClaim is mounted here
    that the drift CronJob reads (and writes its reports under, in drift-reports/)."""
    sample_rate: float = Field(c.REQUEST_LOG_SAMPLE_RATE, ge=0.0, le=1.0)
    """Share of predicted rows written to the log, 0 to 1; 0 turns logging off."""
    max_bytes: int = Field(c.REQUEST_LOG_MAX_BYTES, ge=1024)
    """Size in bytes at which requests.jsonl is rotated to requests.jsonl.1."""
    backups: int = Field(c.REQUEST_LOG_BACKUPS, ge=0, le=100)
    """Rotated files kept (requests.jsonl.1 ... .N); the log takes at most about
    (backups + 1) * max_bytes."""


class Serve(Strict):
    """The model server (`mlgen serve`) in the image and its Kubernetes Deployment."""

    port: int = Field(c.DEFAULT_PORT, ge=1024, le=65535)
    """HTTP port the server listens on: the image's EXPOSE and health check, the container
    port, the Service and the NetworkPolicy. Unprivileged (>= 1024): the image runs as
    non-root."""
    replicas: int = Field(2, ge=0, le=1000)
    """Server pods the Deployment runs, used only when serve.autoscaling.enabled is false. With
    autoscaling on (the default) the HorizontalPodAutoscaler keeps between autoscaling.min and
    autoscaling.max pods and this is ignored: mlgen warns when both are set."""
    workers: int = Field(2, ge=1, le=64)
    """Worker processes the server forks in each pod, all serving the same port."""
    max_batch_size: int = Field(32, ge=1, le=4096)
    """Most rows one model call takes when concurrent requests are batched together (a
    single larger request is not split)."""
    max_wait_ms: float = Field(2.0, ge=0.0, le=1000.0)
    """Longest a small batch waits, in milliseconds, for more rows before the model is
    called; 0 never waits."""
    resources: Resources = Field(default_factory=Resources)
    """CPU and memory requests and limits of the server pods (and of the drift CronJob)."""
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    """Scale the server with a HorizontalPodAutoscaler on CPU use."""
    env: dict[EnvName, str] = Field(default_factory=dict)
    """Environment variables for the server and the drift job, put in the model's
    ConfigMap. Values are free text, never secrets: the ConfigMap is committed."""
    request_log: RequestLog = Field(default_factory=RequestLog)
    """The sampled log of predictions that drift detection reads."""


class Overlay(Strict):
    """What one environment's kustomize overlay changes from the base."""

    replicas: int | None = Field(None, ge=0, le=1000)
    """Server pods in this environment, used only when serve.autoscaling.enabled is false; with
    autoscaling on it is ignored (mlgen warns): set this environment's autoscaling bounds
    instead."""
    resources: Resources | None = None
    """Requests and limits of the server container in this environment; they replace the
    base's as a whole (a side left out gets the default, not serve.resources')."""
    autoscaling: Autoscaling | None = None
    """min, max and cpu_utilization of the autoscaler in this environment (a key left out
    gets its default). Used only when serve.autoscaling.enabled is true; `enabled` here is
    not read."""
    env: dict[EnvName, str] = Field(default_factory=dict)
    """Extra ConfigMap variables for this environment; a name also in serve.env replaces
    its value. Free text, never secrets."""
    image_tag: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] | None
    ) = None
    """Image tag this overlay deploys; default: the spec's version. `mlgen deploy` pins the
    pushed digest over it."""


class Kubernetes(Strict):
    """The Kubernetes manifests: a kustomize base, a monitoring component, one overlay per
    environment."""

    namespace: DnsLabel | None = None
    """Namespace of every object, and where `mlgen deploy` rolls out; default: the name."""
    environments: tuple[DnsLabel, ...] = ("dev", "staging", "prod")
    """Deployment environments in promotion order, one overlay each (k8s/overlays/ENV).
    CI deploys to the first on each push to the default branch and to the others from tags
    (v* tags in GitHub Actions, one after the other); in Jenkins the last, when there are
    several, waits for a person to approve."""
    overlays: dict[DnsLabel, Overlay] = Field(default_factory=dict)
    """Per-environment changes (replicas, resources, autoscaling, env, image_tag), keyed by a
    name listed in `environments`."""
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """Extra labels on every object and pod, beside the app.kubernetes.io ones mlgen sets."""
    annotations: dict[LabelKey, str] = Field(default_factory=dict)
    """Extra annotations on every object (values are free text), beside mlgen.dev/owner and
    mlgen.dev/description."""
    storage_class: DnsLabel | None = None
    """StorageClass of the request-log volume, which the server and the drift job share (it
    must offer ReadWriteMany); default: the cluster's default class."""
    request_log_size: Quantity = "5Gi"
    """Size of the request-log PersistentVolumeClaim."""
    prometheus_operator: bool = False
    """Include the ServiceMonitor and PrometheusRule (drift and server alerts) in every
    overlay. Needs the Prometheus operator's CRDs in the cluster."""
    challenger: Challenger | None = None
    """Serve a challenger model beside the champion as a canary (k8s/challenger, included by
    the chosen environments' overlays) and compare them with `mlgen promote`."""
    gitops: GitOps = Field(default_factory=GitOps)
    """Deliver through Argo CD: an Application per environment syncs the overlay from Git,
    and the pipelines commit the image digest into it instead of running `mlgen deploy`."""

    @model_validator(mode="after")
    def _overlays_known(self) -> Kubernetes:
        if not self.environments:
            raise ValueError("list at least one environment")
        dupes = sorted({e for e in self.environments if self.environments.count(e) > 1})
        if dupes:
            raise ValueError(f"environment names must be unique; repeated: {', '.join(dupes)}")
        unknown = sorted(set(self.overlays) - set(self.environments))
        if unknown:
            raise ValueError(
                f"overlays name unknown environment(s) {', '.join(unknown)}; "
                f"environments are: {', '.join(self.environments)}"
            )
        unknown = sorted(set(self.challenger_environments) - set(self.environments))
        if unknown:
            raise ValueError(
                f"challenger.environments names unknown environment(s) {', '.join(unknown)}; "
                f"environments are: {', '.join(self.environments)}"
            )
        unknown = sorted(set(self.gitops.clusters) - set(self.environments))
        if unknown:
            raise ValueError(
                f"gitops.clusters names unknown environment(s) {', '.join(unknown)}; "
                f"environments are: {', '.join(self.environments)}"
            )
        return self

    @property
    def challenger_environments(self) -> tuple[str, ...]:
        if self.challenger is None:
            return ()
        return self.challenger.environments or self.environments[-1:]


class DriftMethods(Strict):
    """Which statistic decides whether a feature drifted (every statistic is still reported)."""

    numeric: Literal["auto", "psi", "jensenshannon", "wasserstein", "ks"] = "auto"
    """For numeric features; auto is wasserstein (the distance between the distributions in
    units of the reference's standard deviation, stable on large windows)."""
    categorical: Literal["auto", "psi", "jensenshannon", "chi2"] = "auto"
    """For categorical features; auto is jensenshannon (the Jensen-Shannon distance)."""


class DriftThresholds(Strict):
    """When a feature, or the whole window, counts as drifted. A statistic's threshold is
    used for the features whose method (drift.methods) is that statistic."""

    psi: float = Field(c.DRIFT_PSI, gt=0)
    """With method psi: a feature drifts when its population stability index is at least
    this."""
    jensenshannon: float = Field(c.DRIFT_JENSENSHANNON, gt=0, le=1)
    """With method jensenshannon: a feature drifts when its Jensen-Shannon distance (0 to 1)
    is at least this."""
    wasserstein: float = Field(c.DRIFT_WASSERSTEIN, gt=0)
    """With method wasserstein: a numeric feature drifts when its Wasserstein distance, in
    units of the reference's standard deviation, is at least this."""
    ks_pvalue: float = Field(c.DRIFT_KS_PVALUE, gt=0, lt=1)
    """With method ks: a numeric feature drifts when the Kolmogorov-Smirnov test's p-value
    is below this."""
    chi2_pvalue: float = Field(c.DRIFT_CHI2_PVALUE, gt=0, lt=1)
    """With method chi2: a categorical feature drifts when the chi-square test's p-value is
    below this."""
    share: float = Field(c.DRIFT_SHARE, gt=0, le=1)
    """The window drifts (exit 1, on_drift actions run) when at least this share of the
    evaluated features drifted."""
    missing_rate: float = Field(c.DRIFT_MISSING_RATE, gt=0, le=1)
    """Whatever the method, a feature drifts when its share of missing values moves by more
    than this (e.g. 0.02 to 0.15)."""


class Drift(Strict):
    """Data-drift detection: `mlgen drift`, its CronJob and the drift-retrain workflow."""

    enabled: bool = True
    """Render the drift CronJob (k8s/base/cronjob-drift.yaml) and the drift-retrain
    workflow (.github/workflows/drift.yml). `mlgen drift` runs either way."""
    schedule: str = "0 */6 * * *"
    """Cron schedule (5 fields) of the drift CronJob, and of the scheduled check in the
    drift-retrain workflow when `current` is set. The PrometheusRule's stale-drift-job alert
    fires after two missed runs."""
    window: Annotated[str, StringConstraints(pattern=DURATION_RE)] = "24h"
    """Only rows logged this recently are compared, e.g. 90m, 24h or 7d."""
    methods: DriftMethods = Field(default_factory=DriftMethods)
    """The statistic that decides drift, per feature type."""
    thresholds: DriftThresholds = Field(default_factory=DriftThresholds)
    """Per-statistic thresholds, and the share of drifted features that marks the window."""
    min_rows: int = Field(100, ge=1)
    """A window (or a feature) with fewer rows is reported as too few rows, never as drift."""
    on_drift: tuple[Literal["alert", "retrain"], ...] = ("alert",)
    """What a drifted window triggers: alert (a DRIFT ALERT line in the job's log, beside
    the mlgen_drift_detected metric) and/or retrain (the retrain_hook)."""
    reference: RelPath = "artifacts/reference_profile.json"
    """Reference profile JSON, relative to the repository: written by the scaffolded
    training, read by `mlgen drift`."""
    current: str | None = None
    """Current window for `mlgen drift` without --current: a request-log folder, a .jsonl,
    .csv or .parquet file, or a folder of them, relative to the repository; default: the
    server's request log (serve.request_log.path). When set, the drift-retrain workflow also
    runs the check in CI on `schedule`. The CronJob always reads the request log."""
    report_dir: RelPath = "reports/drift"
    """Where `mlgen drift` writes drift-report.json, .md and .html, relative to the
    repository; the workflow keeps it as an artifact. The CronJob writes under the request
    log's drift-reports/ folder instead."""
    pushgateway: HttpUrl | None = None
    """Prometheus Pushgateway URL that `mlgen drift` pushes its metrics to."""
    textfile_dir: str | None = None
    """Folder for node-exporter's textfile collector, where `mlgen drift` writes its metrics
    when no pushgateway is set; relative paths are to the repository."""
    retrain_hook: Literal["none", "jenkins", "github", "command"] = "none"
    """What on_drift `retrain` starts: none; jenkins (the model's Jenkins job, with
    RETRAIN_REASON); github (a workflow_dispatch of the drift-retrain workflow; needs
    ci.github.repository); command (runs retrain_command)."""
    retrain_command: str | None = None
    """Shell command run by retrain_hook `command`, in the repository folder, with
    MLGEN_DRIFT_REASON and MLGEN_DRIFT_DETAILS (JSON) in its environment."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from .cron import check_cron

        check_cron(value)
        return value


MonitorMetric = Literal["roc_auc", "accuracy", "f1", "precision", "recall", "brier", "rmse",
                        "mae", "r2"]


class Monitor(Strict):
    """Live model performance: `mlgen monitor` joins the labels that come back (the feedback
    endpoint, `mlgen feedback`) to the logged predictions; its CronJob runs beside drift's."""

    enabled: bool = True
    """Render the monitor CronJob (k8s/base/cronjob-monitor.yaml) and its PrometheusRule
    alerts, and, with `predictions` set, the scheduled monitor job in the pipelines.
    `mlgen monitor` runs either way."""
    schedule: str = "30 */6 * * *"
    """Cron schedule (5 fields) of the monitor CronJob and of the scheduled CI job. The
    PrometheusRule's stale-monitor-job alert fires after two missed runs."""
    window: Annotated[str, StringConstraints(pattern=DURATION_RE)] = "7d"
    """Predictions logged this recently are scored, e.g. 24h or 30d; labels for older
    predictions are counted as late."""
    label_delay: Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]*(m|h|d))$")] = "0"
    """How long outcomes take to arrive (e.g. 3d for a default): predictions younger than this
    are not expected to be labelled yet and do not lower the labelled share."""
    min_labels: int = Field(200, ge=1)
    """A window with fewer labelled predictions gives no verdict (exit 0, said so)."""
    metrics: tuple[MonitorMetric, ...] = ()
    """Metrics to compute; default: the task's (roc_auc, accuracy, f1, precision, recall,
    brier for classification; rmse, mae, r2 for regression)."""
    max_drop: dict[MonitorMetric, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    """Metric -> largest allowed absolute drop from the training-time value (model.metrics_file)
    before it counts, e.g. {roc_auc: 0.03}; a metric not listed uses max_relative_drop."""
    max_relative_drop: float | None = Field(0.05, ge=0, le=1)
    """Allowed drop as a share of the training value for metrics not in max_drop (0.05: 5 %);
    null: only max_drop and the gate's bounds count."""
    predictions: str | None = None
    """Predictions for `mlgen monitor` without --predictions: a request-log folder or a
    requests.jsonl, relative to the repository; default: the server's request log
    (serve.request_log.path). When set, the pipelines also run the monitor on `schedule`
    (.github/workflows/monitor.yml, Jenkinsfile.monitor): CI can read only the repository.
    The CronJob always reads the request log and its labels.jsonl."""
    labels: str | None = None
    """Labels for `mlgen monitor` without --labels: a labels.jsonl, CSV or Parquet file or a
    folder, relative to the repository; default: labels.jsonl in the request log folder."""
    labels_stale_after: Annotated[str, StringConstraints(pattern=DURATION_RE)] = "2d"
    """The PrometheusRule's labels-stopped alert fires when no label arrived for this long."""
    report_dir: RelPath = "reports/monitor"
    """Where `mlgen monitor` writes monitor-report.json, .md and .html."""
    textfile_dir: str | None = None
    """Folder for node-exporter's textfile collector, where `mlgen monitor` writes
    mlgen_monitor.prom; relative paths are to the repository."""
    on_drop: tuple[Literal["alert", "retrain"], ...] = ("alert",)
    """What a real drop triggers: alert (a PERFORMANCE DROP line in the job's log, beside
    the mlgen_monitor_drop metric) and/or retrain (drift.retrain_hook, with the reason)."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from .cron import check_cron

        check_cron(value)
        return value
