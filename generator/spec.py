"""The typed, validated, frozen Spec that one `mlgen.yaml` describes.

Parsing happens once (`load_spec`); every later stage receives the frozen Spec. The models
forbid unknown keys so a typo fails loudly; `spec_loader.py` turns validation errors into
messages naming the file, the key path and line:column.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

API_VERSION = "mlgen/v1"

# DNS-1123 label: what Kubernetes object names, image repositories and Jenkins job names accept.
DNS_LABEL_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_RE, max_length=63)]
# A Python/SQL-ish identifier: feature names reach pandas columns, Prometheus labels, CSV headers.
FEATURE_RE = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
FeatureName = Annotated[str, StringConstraints(pattern=FEATURE_RE)]
# Kubernetes resource quantity (a subset of resource.Quantity that real specs use).
QUANTITY_RE = r"^([0-9]+(\.[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E)?$"
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_RE)]
# Environment variable names as POSIX shells accept them.
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
# Label / annotation keys: optional DNS-subdomain prefix, then a name segment.
LABEL_KEY_RE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_RE, max_length=253)]
LabelValue = Annotated[
    str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
]
# Stage names become Jenkins stage names, workflow step ids and `mlgen run` arguments.
StageName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,30}$")]
# Relative POSIX paths inside the repository: no absolute paths, no `..`, no control characters.
REL_PATH_RE = r"^(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_./@+-]+$"
RelPath = Annotated[str, StringConstraints(pattern=REL_PATH_RE, max_length=255)]
# Image references: registry host[:port], repository path, base image with optional tag/digest.
REGISTRY_RE = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._-]+)*$"
REPOSITORY_RE = r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
IMAGE_REF_RE = (
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?/)?[a-z0-9]+([._-][a-z0-9]+)*"
    r"(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
# Jenkins credential ids and folder parts: what Jenkins accepts in URLs without surprises.
CredentialId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
FOLDER_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$"
GITHUB_REPO_RE = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
BRANCH_RE = r"^(?!/)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]+(?<!/)(?<!\.lock)$"
DURATION_RE = r"^[1-9][0-9]*(m|h|d)$"

TargetName = Literal["jenkins", "github-actions", "docker", "kubernetes"]
TARGET_NAMES: tuple[TargetName, ...] = ("jenkins", "github-actions", "docker", "kubernetes")
ResourceName = Literal["cpu", "memory", "ephemeral-storage"]


class Strict(BaseModel):
    """Base for every spec section: frozen, unknown keys rejected."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, regex_engine="python-re"
    )


class Threshold(Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("give at least one of 'min' or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Champion(Strict):
    metric: str = Field(description="Metric compared with the current champion's.")
    min_delta: float = Field(0.0, description="How much better (>= 0) or worse (< 0) a challenger may be.")
    higher_is_better: bool = True


class Gate(Strict):
    metrics: dict[str, Threshold] = Field(default_factory=dict)
    champion: Champion | None = None


class Features(Strict):
    numeric: tuple[FeatureName, ...] = ()
    categorical: tuple[FeatureName, ...] = ()

    @model_validator(mode="after")
    def _distinct(self) -> Features:
        names = [*self.numeric, *self.categorical]
        if not names:
            raise ValueError("list at least one feature under 'numeric' or 'categorical'")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature names must be unique; repeated: {', '.join(dupes)}")
        return self

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


class Data(Strict):
    train: RelPath = "data/train.csv"
    target: FeatureName = "target"


def _default_stages() -> dict[str, str]:
    return {"train": "python -m model.train", "test": "pytest -q tests"}


class Model(Strict):
    task: Literal["classification", "regression"] = "classification"
    framework: Literal["sklearn"] = "sklearn"
    stages: dict[StageName, str] = Field(
        default_factory=_default_stages,
        description="Stage name -> shell command; what CI runs and what `mlgen run STAGE` runs.",
    )
    artifact: RelPath = "artifacts/model.joblib"
    metrics_file: RelPath = "artifacts/metrics.json"
    data: Data = Field(default_factory=Data)
    features: Features
    gate: Gate = Field(default_factory=Gate)

    @model_validator(mode="after")
    def _target_is_not_a_feature(self) -> Model:
        if self.data.target in self.features.all:
            raise ValueError(f"the target '{self.data.target}' is also listed as a feature")
        return self

    @field_validator("stages")
    @classmethod
    def _commands_not_empty(cls, stages: dict[str, str]) -> dict[str, str]:
        for name, command in stages.items():
            if not command.strip():
                raise ValueError(f"stage '{name}' has an empty command")
            if "\x00" in command:
                raise ValueError(f"stage '{name}' contains a NUL character")
        return stages


class Image(Strict):
    registry: Annotated[str, StringConstraints(pattern=REGISTRY_RE, max_length=255)] = "registry.example.com"
    repository: Annotated[str, StringConstraints(pattern=REPOSITORY_RE, max_length=255)] | None = None
    base: Annotated[str, StringConstraints(pattern=IMAGE_REF_RE, max_length=255)] = "python:3.11-slim"
    pip_index_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s'\"\\`$]+$")] | None = None


def _default_requests() -> dict[ResourceName, str]:
    return {"cpu": "500m", "memory": "512Mi"}


def _default_limits() -> dict[ResourceName, str]:
    return {"cpu": "1", "memory": "1Gi"}


class Resources(Strict):
    requests: dict[ResourceName, Quantity] = Field(default_factory=_default_requests)
    limits: dict[ResourceName, Quantity] = Field(default_factory=_default_limits)


class Autoscaling(Strict):
    enabled: bool = True
    min: int = Field(2, ge=1, le=1000)
    max: int = Field(10, ge=1, le=1000)
    cpu_utilization: int = Field(70, ge=1, le=100)

    @model_validator(mode="after")
    def _order(self) -> Autoscaling:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not be greater than max ({self.max})")
        return self


class RequestLog(Strict):
    path: str = Field("/var/log/mlgen", pattern=r"^/[A-Za-z0-9_./-]*$")
    sample_rate: float = Field(0.1, ge=0.0, le=1.0)
    max_bytes: int = Field(50_000_000, ge=1024)
    backups: int = Field(5, ge=0, le=100)


class Serve(Strict):
    port: int = Field(8080, ge=1024, le=65535, description="Unprivileged port (the image runs as non-root).")
    replicas: int = Field(
        2, ge=0, le=1000,
        description="Pod count, used only when serve.autoscaling.enabled is false. With "
                    "autoscaling on (the default) the HorizontalPodAutoscaler owns the count "
                    "(autoscaling.min..max) and this is ignored: mlgen warns when both are set.")
    workers: int = Field(2, ge=1, le=64)
    max_batch_size: int = Field(32, ge=1, le=4096)
    max_wait_ms: float = Field(2.0, ge=0.0, le=1000.0)
    resources: Resources = Field(default_factory=Resources)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    env: dict[EnvName, str] = Field(default_factory=dict, description="Free-text values.")
    request_log: RequestLog = Field(default_factory=RequestLog)


class Overlay(Strict):
    replicas: int | None = Field(
        None, ge=0, le=1000,
        description="This environment's pod count, used only when serve.autoscaling.enabled is "
                    "false; with autoscaling on it is ignored (mlgen warns): set the overlay's "
                    "autoscaling min and max instead.")
    resources: Resources | None = None
    autoscaling: Autoscaling | None = None
    env: dict[EnvName, str] = Field(default_factory=dict)
    image_tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] | None = None


class Kubernetes(Strict):
    namespace: DnsLabel | None = None
    environments: tuple[DnsLabel, ...] = ("dev", "staging", "prod")
    overlays: dict[DnsLabel, Overlay] = Field(default_factory=dict)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelKey, str] = Field(default_factory=dict, description="Free-text values.")
    storage_class: DnsLabel | None = None
    request_log_size: Quantity = "5Gi"
    prometheus_operator: bool = Field(
        False, description="Include the ServiceMonitor and PrometheusRule (needs the operator's CRDs)."
    )

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
        return self


class DriftMethods(Strict):
    numeric: Literal["auto", "psi", "jensenshannon", "wasserstein", "ks"] = "auto"
    categorical: Literal["auto", "psi", "jensenshannon", "chi2"] = "auto"


class DriftThresholds(Strict):
    psi: float = Field(0.2, gt=0)
    jensenshannon: float = Field(0.1, gt=0, le=1)
    wasserstein: float = Field(0.1, gt=0)
    ks_pvalue: float = Field(0.05, gt=0, lt=1)
    chi2_pvalue: float = Field(0.05, gt=0, lt=1)
    share: float = Field(0.5, gt=0, le=1, description="Share of drifted features that marks the dataset drifted.")
    missing_rate: float = Field(0.1, gt=0, le=1, description="A feature drifts when its share of missing values moves by more than this.")


class Drift(Strict):
    enabled: bool = True
    schedule: str = "0 */6 * * *"
    window: Annotated[str, StringConstraints(pattern=DURATION_RE)] = "24h"
    methods: DriftMethods = Field(default_factory=DriftMethods)
    thresholds: DriftThresholds = Field(default_factory=DriftThresholds)
    min_rows: int = Field(100, ge=1, description="A window (or a feature) with fewer rows is reported as too few rows, never as drift.")
    on_drift: tuple[Literal["alert", "retrain"], ...] = ("alert",)
    reference: RelPath = "artifacts/reference_profile.json"
    current: str | None = Field(None, description="Current window; default: the server's request log dir.")
    report_dir: RelPath = "reports/drift"
    pushgateway: Annotated[str, StringConstraints(pattern=r"^https?://[^\s'\"\\`$]+$")] | None = None
    textfile_dir: str | None = None
    retrain_hook: Literal["none", "jenkins", "github", "command"] = "none"
    retrain_command: str | None = None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from .cron import check_cron

        check_cron(value)
        return value


class JenkinsCredentials(Strict):
    registry: CredentialId = "registry-push"
    github: CredentialId = "github-app"
    kubeconfig: CredentialId = "kubeconfig"


class Jenkins(Strict):
    enabled: bool = True
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s'\"\\`$]+$")] | None = None
    folder: Annotated[str, StringConstraints(pattern=FOLDER_RE, max_length=255)] | None = None
    kind: Literal["multibranch", "pipeline"] = "multibranch"
    credentials: JenkinsCredentials = Field(default_factory=JenkinsCredentials)
    github_api_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s'\"\\`$]+$")] | None = None
    agent_label: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.&|!() -]{1,100}$")] | None = None


class GitHub(Strict):
    repository: Annotated[str, StringConstraints(pattern=GITHUB_REPO_RE)] | None = None
    default_branch: Annotated[str, StringConstraints(pattern=BRANCH_RE, max_length=255)] = "main"
    actions: bool = True
    registry_auth: Literal["secrets", "oidc"] = "secrets"
    runs_on: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")] = "ubuntu-24.04"


class CI(Strict):
    jenkins: Jenkins = Field(default_factory=Jenkins)
    github: GitHub = Field(default_factory=GitHub)


class Outputs(Strict):
    """Where each target writes, relative to the repository root."""

    jenkinsfile: RelPath = "Jenkinsfile"
    workflows: RelPath = ".github/workflows"
    dockerfile: RelPath = "Dockerfile"
    kubernetes: RelPath = "k8s"


class Spec(Strict):
    api_version: Literal["mlgen/v1"] = Field(alias="apiVersion")
    name: DnsLabel
    description: str = ""
    owner: str = Field("unknown", min_length=1, max_length=256)
    version: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")] = "0.1.0"
    python: Literal["3.10", "3.11", "3.12", "3.13"] = "3.11"
    targets: tuple[TargetName, ...] = TARGET_NAMES
    templates: str | None = Field(None, description="Folder of template overrides, layered over the built-ins.")
    outputs: Outputs = Field(default_factory=Outputs)
    model: Model
    image: Image = Field(default_factory=Image)
    serve: Serve = Field(default_factory=Serve)
    kubernetes: Kubernetes = Field(default_factory=Kubernetes)
    drift: Drift = Field(default_factory=Drift)
    ci: CI = Field(default_factory=CI)

    @field_validator("description", "owner")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


    # Derived values: kept here so every target agrees on them.
    @property
    def namespace(self) -> str:
        return self.kubernetes.namespace or self.name

    @property
    def image_repository(self) -> str:
        return self.image.repository or self.name

    @property
    def image_name(self) -> str:
        return f"{self.image.registry}/{self.image_repository}"

    @property
    def owner_label(self) -> str:
        """The owner as a Kubernetes label value (the exact text goes in an annotation)."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.owner).strip("-_.")[:63].strip("-_.")
        return slug or "unknown"
