"""The constrained value types the spec's models share, and their common base.

Kept apart from the models (`spec.py`, `spec_runtime.py`) so both can use them without an
import cycle; `spec_loader.py` turns the patterns back into readable hints.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

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
Duration = Annotated[str, StringConstraints(pattern=DURATION_RE)]
_DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """A spec duration (DURATION_RE: 90m, 24h, 7d) in seconds."""
    return int(text[:-1]) * _DURATION_UNITS[text[-1]]


TargetName = Literal["jenkins", "github-actions", "docker", "kubernetes", "azure-pipelines"]
# The default `targets`: azure-pipelines is opt-in (listed in a spec's targets).
TARGET_NAMES: tuple[TargetName, ...] = ("jenkins", "github-actions", "docker", "kubernetes")
ResourceName = Literal["cpu", "memory", "ephemeral-storage"]


class Strict(BaseModel):
    """Base for every spec section: frozen, unknown keys rejected.

    Each field's docstring is its description in `mlgen schema` (editors show it), so the
    text that documents a key lives beside the key.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, regex_engine="python-re",
        use_attribute_docstrings=True,
    )
