"""The typed, validated, frozen Spec that one `mlgen.yaml` describes.

Parsing happens once (`load_spec`); every later stage receives the frozen Spec. The models
forbid unknown keys so a typo fails loudly; `spec_loader.py` turns validation errors into
messages naming the file, the key path and line:column.

Each field's docstring is its description in `mlgen schema` (editors show it on hover): say
what the key changes in the generated files or at run time. The runtime sections (serve,
kubernetes, drift) are in `spec_runtime.py`, the shared value types in `spec_types.py`.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from .spec_azure import Azure
from .spec_runtime import (
    Autoscaling,
    Drift,
    DriftMethods,
    DriftThresholds,
    HttpUrl,
    Kubernetes,
    Monitor,
    Overlay,
    RequestLog,
    Resources,
    Serve,
)
from .spec_types import (
    BRANCH_RE,
    DNS_LABEL_RE,
    DURATION_RE,
    FEATURE_RE,
    FOLDER_RE,
    GITHUB_REPO_RE,
    IMAGE_REF_RE,
    LABEL_KEY_RE,
    QUANTITY_RE,
    REGISTRY_RE,
    REL_PATH_RE,
    REPOSITORY_RE,
    TARGET_NAMES,
    CredentialId,
    DnsLabel,
    FeatureName,
    RelPath,
    StageName,
    Strict,
    TargetName,
)

__all__ = [
    "API_VERSION",
    "BRANCH_RE",
    "CI",
    "DNS_LABEL_RE",
    "DURATION_RE",
    "FEATURE_RE",
    "GITHUB_REPO_RE",
    "IMAGE_REF_RE",
    "LABEL_KEY_RE",
    "QUANTITY_RE",
    "REL_PATH_RE",
    "TARGET_NAMES",
    "Autoscaling",
    "Champion",
    "Data",
    "Drift",
    "DriftMethods",
    "DriftThresholds",
    "Features",
    "Gate",
    "GitHub",
    "Image",
    "Jenkins",
    "JenkinsCredentials",
    "Kubernetes",
    "Model",
    "Monitor",
    "Outputs",
    "Overlay",
    "RequestLog",
    "Resources",
    "Serve",
    "Spec",
    "Strict",
    "Threshold",
]

API_VERSION = "mlgen/v1"


class Threshold(Strict):
    """Bounds one metric must meet (inclusive); give min, max or both."""

    min: float | None = None
    """The metric must be at least this."""
    max: float | None = None
    """The metric must be at most this."""

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("give at least one of 'min' or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Champion(Strict):
    """Compare the candidate with the production model (the champion) on one metric."""

    metric: str
    """Metric compared with the champion's, whose metrics `mlgen gate --champion FILE|URL`
    (or MLGEN_GATE_CHAMPION) reads."""
    min_delta: float = 0.0
    """How much the candidate must beat the champion by: at least champion + min_delta when
    higher is better, at most champion - min_delta otherwise. Negative: it may be that much
    worse."""
    higher_is_better: bool = True
    """Whether a larger value of `metric` is better (true for roc_auc, false for rmse)."""


class Gate(Strict):
    """What a newly trained model must meet: `mlgen gate`, run by CI after the stages and
    before the image is built."""

    metrics: dict[str, Threshold] = Field(default_factory=dict)
    """Metric name -> {min, max} bounds the candidate's metrics file (model.metrics_file)
    must meet."""
    champion: Champion | None = None
    """Also compare with the production model's metrics; without it there is no
    comparison."""


class Features(Strict):
    """The model's input columns: what the server accepts, what training reads and what drift
    detection profiles. Names are identifiers, unique across both lists."""

    numeric: tuple[FeatureName, ...] = ()
    """Numeric input columns (sent as numbers; null is missing)."""
    categorical: tuple[FeatureName, ...] = ()
    """Categorical input columns (sent as strings; null is missing)."""

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
    """The training data."""

    train: RelPath = "data/train.csv"
    """Training data CSV, relative to the repository, that the scaffolded training reads."""
    target: FeatureName = "target"
    """Column of the training data holding the label the model learns (not a feature)."""


def _default_stages() -> dict[str, str]:
    return {"train": "python -m model.train", "test": "pytest -q tests"}


class Model(Strict):
    """The model: how it is trained, where its files are and what gates it."""

    task: Literal["classification", "regression"] = "classification"
    """What the scaffolded training fits and scores, and what the server returns
    (classes and probabilities, or values)."""
    framework: Literal["sklearn"] = "sklearn"
    """The ML library: sklearn (scikit-learn, saved with joblib), the only one supported."""
    stages: dict[StageName, str] = Field(default_factory=_default_stages)
    """Stage name -> shell command. Jenkins and GitHub Actions run them in this order before
    the gate; `mlgen run STAGE` runs one the same way. Retraining runs the stage `train`."""
    artifact: RelPath = "artifacts/model.joblib"
    """The trained model, relative to the repository: written by training, loaded by
    `mlgen serve`. Keep it under artifacts/, the folder the image copies."""
    metrics_file: RelPath = "artifacts/metrics.json"
    """Metrics JSON written by training and checked by `mlgen gate`; CI keeps it."""
    data: Data = Field(default_factory=Data)
    """Where the training data is and which column is the label."""
    features: Features
    """The input columns (required)."""
    gate: Gate = Field(default_factory=Gate)
    """Metric thresholds and the champion comparison a new model must pass."""

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
    """The model's container image."""

    registry: Annotated[str, StringConstraints(pattern=REGISTRY_RE,
                                               max_length=255)] = "registry.example.com"
    """Registry host (optional :port and path) that `mlgen push` pushes to and the cluster
    pulls from: the image is REGISTRY/REPOSITORY."""
    repository: (Annotated[str, StringConstraints(pattern=REPOSITORY_RE, max_length=255)]
                 | None) = None
    """Repository in the registry; default: the name."""
    base: Annotated[str, StringConstraints(pattern=IMAGE_REF_RE, max_length=255)] = (
        "python:3.11-slim"
    )
    """Base image of both Dockerfile stages (the BASE_IMAGE build argument's default); point
    it at an internal mirror."""
    pip_index_url: HttpUrl | None = None
    """Package index the image build and the generated CI install steps use (PIP_INDEX_URL);
    default: PyPI in the image, the agent's own pip configuration in CI. No credentials: give
    pip those on the build agent."""

    @field_validator("pip_index_url")
    @classmethod
    def _no_credentials(cls, url: str | None) -> str | None:
        # The URL is written into the Dockerfile, the Jenkinsfile and the workflows: a password
        # there would be in every clone. The message must not echo the value for the same reason.
        if url is not None and "@" in url.split("://", 1)[-1].split("/", 1)[0]:
            raise ValueError("must not carry credentials (user:password@host): give pip its "
                             "credentials on the build agent (pip.conf, netrc or PIP_INDEX_URL "
                             "there), never in mlgen.yaml")
        return url


class JenkinsCredentials(Strict):
    """Ids of Jenkins credentials (never the secrets themselves)."""

    registry: CredentialId = "registry-push"
    """Username/password credential the Push image stage logs in to the registry with."""
    github: CredentialId = "github-app"
    """Username/password credential for GitHub (a GitHub App or a token): the job checks out
    with it, the PR report stage comments with it, and with kubernetes.gitops the Deploy
    stages push the pinned digest with it."""
    kubeconfig: CredentialId = "kubeconfig"
    """Secret-file credential holding the kubeconfig the Deploy stages use."""


class Jenkins(Strict):
    """The Jenkins job `mlgen jenkins` registers, and what the Jenkinsfile uses."""

    enabled: bool = True
    """Not read by mlgen: whether the Jenkinsfile is rendered is decided by `targets` (leave
    out jenkins), and the job exists only once `mlgen jenkins apply` registers it."""
    url: HttpUrl | None = None
    """Jenkins URL for `mlgen jenkins` and the jenkins retrain hook when neither --url nor
    JENKINS_URL is given."""
    folder: Annotated[str, StringConstraints(pattern=FOLDER_RE, max_length=255)] | None = None
    """Jenkins folder (a/b) that holds the job; default: the top level."""
    kind: Literal["multibranch", "pipeline"] = "multibranch"
    """multibranch: a Multibranch Pipeline with a GitHub branch source (a job per branch and
    pull request); pipeline: one Pipeline job that builds the default branch."""
    credentials: JenkinsCredentials = Field(default_factory=JenkinsCredentials)
    """Credential ids the job and the Jenkinsfile use."""
    github_api_url: HttpUrl | None = None
    """GitHub Enterprise API URL for the multibranch job's GitHub source, e.g.
    https://github.example.com/api/v3; default: github.com."""
    agent_label: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.&|!() -]{1,100}$")] | None
    ) = None
    """Label expression choosing the agents that run the pipeline; default: any agent."""


class GitHub(Strict):
    """The model's GitHub repository and its Actions workflows."""

    repository: Annotated[str, StringConstraints(pattern=GITHUB_REPO_RE)] | None = None
    """OWNER/NAME of the repository: the image's source label, the Jenkins job's source, the
    github retrain hook, and GitHub commands when GITHUB_REPOSITORY is not set."""
    default_branch: Annotated[str, StringConstraints(pattern=BRANCH_RE, max_length=255)] = "main"
    """The branch CI builds and pushes images from and deploys to the first environment;
    the Jenkins job and the retrain hooks start their builds on it."""
    actions: bool = True
    """Render the GitHub Actions workflows (ci, cd, drift-retrain); false renders none even
    when targets lists github-actions."""
    registry_auth: Literal["secrets"] = "secrets"
    """How the cd workflow logs in to the registry: secrets (REGISTRY_USER and
    REGISTRY_PASSWORD, from a `registry` environment). OIDC login is registry-specific (ECR,
    ACR, Artifact Registry...) and not rendered: `oidc` is refused, not faked."""
    runs_on: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")] = "ubuntu-24.04"
    """Runner label of every workflow job."""


class CI(Strict):
    """The CI systems mlgen renders for."""

    jenkins: Jenkins = Field(default_factory=Jenkins)
    """The Jenkins job and the credentials the Jenkinsfile uses."""
    github: GitHub = Field(default_factory=GitHub)
    """The GitHub repository, its default branch and the Actions workflows."""
    azure: Azure = Field(default_factory=Azure)
    """Agents and service connections of the Azure Pipelines file (target azure-pipelines)."""


class Outputs(Strict):
    """Where each target writes, relative to the repository root."""

    jenkinsfile: RelPath = "Jenkinsfile"
    """Path of the Jenkinsfile (also the Jenkins job's script path)."""
    workflows: RelPath = ".github/workflows"
    """Folder of the workflows ci.yml, cd.yml and drift.yml; GitHub runs only those in
    .github/workflows."""
    dockerfile: RelPath = "Dockerfile"
    """Path of the Dockerfile; its .dockerignore is written beside it."""
    kubernetes: RelPath = "k8s"
    """Folder of the Kubernetes manifests: base/, monitoring/ and overlays/ENV/."""


class Spec(Strict):
    """mlgen.yaml: one model repository, from training to serving."""

    api_version: Literal["mlgen/v1"] = Field(alias="apiVersion")
    """Spec format: mlgen/v1 (`mlgen migrate` rewrites older files)."""
    name: DnsLabel
    """The model's name, a DNS-1123 label: the image repository and the namespace by
    default, every Kubernetes object, the Jenkins job and the metrics' model label."""
    description: str = ""
    """Free text: the mlgen.dev/description annotation, the Jenkins job's description and
    the scaffolded README."""
    owner: str = Field("unknown", min_length=1, max_length=256)
    """Who owns the model (free text): the mlgen.dev/owner annotation as written and, made
    safe, the mlgen.dev/owner label and the image's vendor label."""
    version: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")] = (
        "0.1.0"
    )
    """The model's version: the image tag `mlgen build` always sets, the tag the manifests
    deploy unless an overlay sets image_tag, and the version labels."""
    python: Literal["3.10", "3.11", "3.12", "3.13"] = "3.11"
    """Python version GitHub Actions sets up and the scaffolded pyproject requires; the
    image's Python is image.base's."""
    targets: tuple[TargetName, ...] = TARGET_NAMES
    """What to render: jenkins (Jenkinsfile), github-actions (workflows), docker (Dockerfile),
    kubernetes (manifests), azure-pipelines (opt-in); default: all but azure-pipelines."""
    templates: str | None = None
    """Folder of template overrides, relative to the repository, layered over the built-ins:
    a template there replaces the built-in of the same name."""
    outputs: Outputs = Field(default_factory=Outputs)
    """Where each target writes."""
    model: Model
    """Training, artifacts, features and the gate (required)."""
    image: Image = Field(default_factory=Image)
    """The container image: registry, repository, base image, package index."""
    serve: Serve = Field(default_factory=Serve)
    """The model server and its Deployment."""
    kubernetes: Kubernetes = Field(default_factory=Kubernetes)
    """Namespace, environments and their overlays, metadata and monitoring."""
    drift: Drift = Field(default_factory=Drift)
    """Data-drift detection and what it triggers."""
    monitor: Monitor = Field(default_factory=Monitor)
    """Live model performance from returned labels, and what a drop triggers."""
    ci: CI = Field(default_factory=CI)
    """Jenkins, GitHub and Azure Pipelines settings."""

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
