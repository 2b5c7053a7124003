from __future__ import annotations

import jinja2

from ..render import Artifact
from ..spec import Overlay, Spec
from ..spec_delivery import IN_CLUSTER, challenger_replicas
from .common import model_dir_of, render_file

BASE_FILES = (
    "serviceaccount",
    "configmap",
    "persistentvolumeclaim",
    "deployment",
    "service",
    "hpa",
    "poddisruptionbudget",
    "networkpolicy",
    "cronjob-drift",
    "cronjob-monitor",
)
# Objects for clusters that run the Prometheus operator: a kustomize Component that overlays
# include only when `kubernetes.prometheus_operator` is on, so the base stays valid anywhere.
MONITORING_FILES = ("servicemonitor", "prometheusrule")
# kubernetes.challenger with engine argo-rollouts: a Component with the Rollout and the patches
# that hand the base Deployment's pods (and its HPA) over to it, instead of k8s/challenger.
ROLLOUT_FILES = ("rollout", "kustomization")


def base_files(spec: Spec) -> list[str]:
    files = list(BASE_FILES)
    if not spec.serve.autoscaling.enabled:
        files.remove("hpa")
    if not spec.drift.enabled:
        files.remove("cronjob-drift")
    if not spec.monitor.enabled:
        files.remove("cronjob-monitor")
    return files


def champion_replicas(spec: Spec, overlay: Overlay) -> int:
    """Champion pods an environment runs; with autoscaling, the autoscaler's minimum (the
    challenger's share shrinks as the autoscaler adds champion pods)."""
    if spec.serve.autoscaling.enabled:
        return (overlay.autoscaling or spec.serve.autoscaling).min
    return overlay.replicas if overlay.replicas is not None else spec.serve.replicas


def challenger_count(spec: Spec, overlay: Overlay) -> int:
    """Challenger pods an environment runs: a canary's follow its weight; a shadow gets a
    copy of every champion request, so it runs as many pods as the champion's minimum."""
    challenger = spec.kubernetes.challenger
    if challenger is None:
        raise ValueError("no kubernetes.challenger")
    champion = champion_replicas(spec, overlay)
    if challenger.mode == "shadow":
        return champion
    return challenger_replicas(champion, challenger.weight)


# The challenger Component's own objects beside its Deployment: a shadow is reached through
# a Service of its own (the champion's Service never selects it) and needs network policies
# (the base's policy selects only champion pods, and lets them open nothing but DNS).
SHADOW_FILES = ("service", "networkpolicy", "networkpolicy-mirror")


def render(spec: Spec, env: jinja2.Environment) -> list[Artifact]:
    root = spec.outputs.kubernetes
    files = base_files(spec)
    out = [render_file(env, f"kubernetes/base/{name}.yaml.j2", f"{root}/base/{name}.yaml", spec,
                       "kubernetes") for name in files]
    out.append(render_file(env, "kubernetes/base/kustomization.yaml.j2",
                           f"{root}/base/kustomization.yaml", spec, "kubernetes", resources=files))
    out += [render_file(env, f"kubernetes/monitoring/{name}.yaml.j2",
                        f"{root}/monitoring/{name}.yaml", spec, "kubernetes")
            for name in MONITORING_FILES]
    out.append(render_file(env, "kubernetes/monitoring/kustomization.yaml.j2",
                           f"{root}/monitoring/kustomization.yaml", spec, "kubernetes",
                           resources=MONITORING_FILES))
    challenger = spec.kubernetes.challenger
    rollout = challenger is not None and challenger.engine == "argo-rollouts"
    if rollout:
        out += [render_file(env, f"kubernetes/rollouts/{name}.yaml.j2",
                            f"{root}/rollouts/{name}.yaml", spec, "kubernetes")
                for name in ROLLOUT_FILES]
    elif challenger is not None:
        out.append(render_file(env, "kubernetes/base/deployment.yaml.j2",
                               f"{root}/challenger/deployment.yaml", spec, "kubernetes",
                               track="challenger", replicas=challenger_count(spec, Overlay())))
        extra = SHADOW_FILES if challenger.mode == "shadow" else ()
        out += [render_file(env, f"kubernetes/challenger/{name}.yaml.j2",
                            f"{root}/challenger/{name}.yaml", spec, "kubernetes")
                for name in extra]
        out.append(render_file(env, "kubernetes/challenger/kustomization.yaml.j2",
                               f"{root}/challenger/kustomization.yaml", spec, "kubernetes",
                               resources=("deployment", *extra)))
    for environment in spec.kubernetes.environments:
        overlay = spec.kubernetes.overlays.get(environment, Overlay())
        count: int | None = None
        if challenger is not None and environment in spec.kubernetes.challenger_environments:
            count = challenger_count(spec, overlay)
        out.append(render_file(env, "kubernetes/overlay/kustomization.yaml.j2",
                               f"{root}/overlays/{environment}/kustomization.yaml", spec,
                               "kubernetes", environment=environment, overlay=overlay,
                               challenger_replicas=count, rollout=rollout and bool(count)))
    gitops = spec.kubernetes.gitops
    if gitops.enabled:
        # Argo CD reads paths from the repository's root: in a monorepo they start at the
        # model's folder.
        here = f"{model_dir_of(env)}/" if model_dir_of(env) else ""
        for environment in spec.kubernetes.environments:
            out.append(render_file(env, "kubernetes/argocd/application.yaml.j2",
                                   argocd_application_path(spec, environment), spec,
                                   "kubernetes", environment=environment,
                                   overlay_path=f"{here}{root}/overlays/{environment}",
                                   application_path=here + argocd_application_path(spec,
                                                                                   environment),
                                   cluster=gitops.clusters.get(environment, IN_CLUSTER)))
    return out


def argocd_application_path(spec: Spec, environment: str) -> str:
    return f"{spec.outputs.kubernetes}/argocd/{environment}.yaml"
