"""`ci.azure`: what the azure-pipelines target renders with (service connections, agents).

Only names live here, never secrets: the credentials are in Azure DevOps service connections
and secret variables, which the rendered pipeline refers to by name. Every name that reaches
the pipeline file is held to a pattern without `$`, quotes or line breaks, so a spec value can
never become an Azure Pipelines macro (`$(var)`), template expression (`${{ }}`) or runtime
expression (`$[ ]`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StringConstraints

from .spec_types import DnsLabel, EnvName, RelPath, Strict

if TYPE_CHECKING:
    from .spec import Spec

# Service connection and agent pool names as Azure DevOps shows them: letters, digits, '_',
# '.', '-' and single inner spaces ("My ACR"); nothing Azure would expand or YAML would parse.
CONNECTION_RE = r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]| (?! ))*(?<! )$"
ConnectionName = Annotated[str, StringConstraints(pattern=CONNECTION_RE, max_length=100)]
VM_IMAGE_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Azure(Strict):
    """The Azure Pipelines file (target azure-pipelines): agents and the service connections
    it logs in through. Connections and environments are created in Azure DevOps; see
    docs/azure-pipelines.md."""

    path: RelPath = "azure-pipelines.yml"
    """Path of the pipeline file, relative to the repository (the pipeline's YAML file path
    in Azure DevOps); in a monorepo, relative to the model's folder (one pipeline per model)."""
    vm_image: Annotated[str, StringConstraints(pattern=VM_IMAGE_RE)] = "ubuntu-24.04"
    """Microsoft-hosted agent image every job runs on (pool.vmImage), unless `pool` names a
    self-hosted pool."""
    pool: ConnectionName | None = None
    """Self-hosted agent pool (pool.name) every job runs on instead of `vm_image`."""
    registry_connection: ConnectionName = "registry"
    """Docker registry service connection the image stage logs in with (Docker@2 login)
    before `mlgen push`; the credential stays in Azure DevOps."""
    kubernetes_connection: ConnectionName = "kubernetes"
    """Kubernetes service connection each deploy job logs in with (Kubernetes@1 login)
    before `mlgen deploy`, unless `kubernetes_connections` names one for its environment.
    Not used with kubernetes.gitops (Argo CD deploys)."""
    kubernetes_connections: dict[DnsLabel, ConnectionName] = Field(default_factory=dict)
    """Environment -> Kubernetes service connection, for environments on other clusters than
    `kubernetes_connection`'s. Keys must be listed in kubernetes.environments."""
    gitops_token_variable: EnvName | None = None
    """With kubernetes.gitops: the secret pipeline variable (a variable group's, say) holding
    the token `mlgen gitops pin --push` pushes with, for a repository outside Azure Repos;
    default: the job's System.AccessToken (give the build service Contribute on the repo)."""

    def kubernetes_connection_for(self, environment: str) -> str:
        return self.kubernetes_connections.get(environment, self.kubernetes_connection)


def azure_issues(spec: Spec) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-section checks pydantic cannot do inside `ci.azure`: (key path, message)."""
    known = spec.kubernetes.environments
    unknown = sorted(set(spec.ci.azure.kubernetes_connections) - set(known))
    if not unknown:
        return []
    message = (f"names unknown environment(s) {', '.join(unknown)}; kubernetes.environments "
               f"are: {', '.join(known)}")
    return [(("ci", "azure", "kubernetes_connections"), message)]
