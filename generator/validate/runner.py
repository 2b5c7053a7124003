"""Run every check over a project's generated files and gather one Report.

The files are those `render_artifacts` says the spec generates: read from disk (what is
committed), or, with `rendered=True`, freshly rendered into a private temporary folder.
Tools run two at a time (they mostly wait on subprocesses; the machines CI runs on are small).
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Protocol

from ..render import Artifact
from . import (
    actionlint,
    argocd,
    azure_pipelines,
    checkov,
    groovy,
    hadolint,
    kubernetes,
    promtool,
    rollouts,
    yamllint,
    zizmor,
)
from .model import Finding, Note, Report, ToolMissing, ToolOutcome, ToolRun, Workspace


@dataclass(frozen=True)
class Check:
    name: str
    install: str
    files: Callable[[Workspace], tuple[str, ...]]
    run: Callable[[Workspace], ToolOutcome]


CHECKS: tuple[Check, ...] = (
    Check(yamllint.NAME, yamllint.INSTALL, yamllint.files, yamllint.check),
    Check(kubernetes.KUSTOMIZE, kubernetes.KUSTOMIZE_INSTALL, kubernetes.kustomize_files,
          kubernetes.check_kustomize),
    Check(actionlint.NAME, actionlint.INSTALL, actionlint.files, actionlint.check),
    Check(zizmor.NAME, zizmor.INSTALL, zizmor.files, zizmor.check),
    Check(hadolint.NAME, hadolint.INSTALL, hadolint.files, hadolint.check),
    Check(groovy.NAME, groovy.INSTALL, groovy.files, groovy.check),
    Check(checkov.NAME, checkov.INSTALL, checkov.files, checkov.check),
    Check(argocd.NAME, argocd.INSTALL, argocd.files, argocd.check),
    Check(azure_pipelines.NAME, azure_pipelines.INSTALL, azure_pipelines.files,
          azure_pipelines.check),
    Check(rollouts.NAME, rollouts.INSTALL, rollouts.files, rollouts.check),
    Check(promtool.NAME, promtool.INSTALL, promtool.files, promtool.check),
)
# Validates what kustomize built, so it runs after the checks above.
VALIDATE_CHECK = Check(kubernetes.VALIDATE, kubernetes.VALIDATE_INSTALL,
                       kubernetes.validate_files, kubernetes.check_validate)
TOOL_NAMES = tuple(c.name for c in (*CHECKS, VALIDATE_CHECK))


class Progress(Protocol):
    """Told as each tool starts and finishes (from worker threads: implementations lock)."""

    def planned(self, tools: tuple[str, ...]) -> None: ...

    def started(self, tool: str, files: int) -> None: ...

    def finished(self, run: ToolRun, findings: int, seconds: float) -> None: ...


class _Silent:
    def planned(self, tools: tuple[str, ...]) -> None:
        pass

    def started(self, tool: str, files: int) -> None:
        pass

    def finished(self, run: ToolRun, findings: int, seconds: float) -> None:
        pass


@dataclass(frozen=True)
class Layout:
    """Where each target writes (the spec's `outputs`), relative to the project root."""

    jenkinsfile: str
    workflows: str
    dockerfile: str
    kubernetes: str
    azure_pipelines: str = ""  # ci.azure.path; checked only when the target rendered it


def workspace_for(root: Path, scratch: Path, paths: list[str], layout: Layout,
                  kubernetes_version: str) -> Workspace:
    def under(folder: str, path: str) -> bool:
        return path.startswith(folder.rstrip("/") + "/")

    yaml_files = [p for p in paths if p.endswith((".yml", ".yaml"))]
    k8s_yaml = [p for p in yaml_files if under(layout.kubernetes, p)]
    return Workspace(
        root=root,
        scratch=scratch,
        yaml_files=tuple(yaml_files),
        workflows=tuple(p for p in yaml_files
                        if under(layout.workflows, p) and p != layout.azure_pipelines),
        dockerfiles=tuple(p for p in paths if p == layout.dockerfile),
        # The model's Jenkinsfile and, with monitor.predictions, the scheduled monitor's.
        jenkinsfiles=tuple(p for p in paths
                           if p in (layout.jenkinsfile, layout.jenkinsfile + ".monitor")),
        k8s_resources=tuple(
            p
            for p in k8s_yaml
            if PurePosixPath(p).name not in ("kustomization.yaml", "kustomization.yml")
            and not under(f"{layout.kubernetes}/argocd", p)
        ),
        # Argo CD Applications: objects for the Argo CD cluster, not part of any overlay.
        argocd_applications=tuple(p for p in k8s_yaml
                                  if under(f"{layout.kubernetes}/argocd", p)),
        # The Rollout of kubernetes.challenger's argo-rollouts engine (also a k8s resource).
        argo_rollouts=tuple(p for p in k8s_yaml if under(f"{layout.kubernetes}/rollouts", p)
                            and PurePosixPath(p).name == "rollout.yaml"),
        k8s_overlays=tuple(
            str(PurePosixPath(p).parent)
            for p in k8s_yaml
            if under(f"{layout.kubernetes}/overlays", p)
            and PurePosixPath(p).name == "kustomization.yaml"
        ),
        azure_pipelines=tuple(p for p in paths if p == layout.azure_pipelines),
        kubernetes_version=kubernetes_version,
    )


def run_checks(ws: Workspace, tools: tuple[str, ...] = (),
               progress: Progress | None = None) -> Report:
    findings: list[Finding] = []
    notes: list[Note] = []
    runs: dict[str, ToolRun] = {}
    told = progress or _Silent()
    told.planned(tuple(name for name in TOOL_NAMES if not tools or name in tools))

    def one(check: Check) -> None:
        if tools and check.name not in tools:
            return
        targets = check.files(ws)
        if not targets:
            runs[check.name] = ToolRun(check.name, "nothing-to-check")
            told.finished(runs[check.name], 0, 0.0)
            return
        told.started(check.name, len(targets))
        start = time.monotonic()
        try:
            outcome = check.run(ws)
        except ToolMissing as missing:
            runs[check.name] = ToolRun(check.name, "skipped", install=check.install,
                                       reason=missing.reason)
            told.finished(runs[check.name], 0, time.monotonic() - start)
            return
        findings.extend(outcome.findings)
        notes.extend(outcome.notes)
        runs[check.name] = ToolRun(check.name, "ran", files=outcome.files or len(targets))
        told.finished(runs[check.name], len(outcome.findings), time.monotonic() - start)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, CHECKS))
    one(VALIDATE_CHECK)
    order = {name: i for i, name in enumerate(TOOL_NAMES)}
    return Report(
        findings=sorted(
            findings, key=lambda f: (f.file, f.line, order.get(f.tool, 99), f.rule, f.message)
        ),
        notes=sorted(notes, key=lambda n: (n.file, n.tool, n.message)),
        tools=[runs[name] for name in TOOL_NAMES if name in runs],
    )


def validate_paths(root: Path, expected: list[str], layout: Layout, kubernetes_version: str,
                   tools: tuple[str, ...] = (), progress: Progress | None = None) -> Report:
    """Check the files at `expected` (relative paths) under `root`; a missing one is a finding."""
    present = [p for p in expected if (root / p).is_file()]
    missing = [Finding(p, "mlgen", "missing-file", 0,
                       "generated file is missing; run `mlgen render` to write it")
               for p in expected if p not in present]
    with tempfile.TemporaryDirectory(prefix="mlgen-validate-") as scratch:
        ws = workspace_for(root, Path(scratch), present, layout, kubernetes_version)
        report = run_checks(ws, tools, progress)
    return replace(report, findings=missing + report.findings)


def validate_artifacts(artifacts: list[Artifact], layout: Layout, kubernetes_version: str,
                       tools: tuple[str, ...] = (), progress: Progress | None = None) -> Report:
    """Write freshly rendered artifacts to a private folder and check them there."""
    with tempfile.TemporaryDirectory(prefix="mlgen-rendered-") as tmp:
        root = Path(tmp)
        for artifact in artifacts:
            dest = root / artifact.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(artifact.text, encoding="utf-8")
        return validate_paths(root, [a.path for a in artifacts], layout, kubernetes_version,
                              tools, progress)


def merge_reports(reports: list[Report]) -> Report:
    """One report from several (a monorepo validates each model with its own layout): a tool
    ran when it ran for any model, and was skipped when it was skipped for any."""
    if len(reports) == 1:
        return reports[0]
    runs: dict[str, ToolRun] = {}
    for report in reports:
        for run in report.tools:
            seen = runs.get(run.tool)
            if seen is None or run.status == "skipped" or seen.status == "nothing-to-check":
                runs[run.tool] = run
            elif run.status == "ran" and seen.status == "ran":
                runs[run.tool] = replace(seen, files=seen.files + run.files)
    return Report(findings=[f for r in reports for f in r.findings],
                  notes=[n for r in reports for n in r.notes],
                  tools=[runs[name] for name in TOOL_NAMES if name in runs])
