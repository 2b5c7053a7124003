"""Which jobs a run is about: one repository's mlgen.yaml, or a fleet file listing many.

Fleet file (YAML), paths relative to the file itself:

    concurrency: 8            # optional: requests in flight at once (default 8)
    repositories:
      - credit-risk/mlgen.yaml
      - path: ../churn        # a folder means its mlgen.yaml
      - models-monorepo       # a monorepo's root: one job per model it lists
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from mlgen.models.contract import SPEC_FILENAME

from ...errors import MlgenError, UsageError
from ...targets.jenkins_job import (
    DesiredJob,
    JobSpec,
    job_spec_from_spec,
    monitor_job_spec,
    render_job,
)


@dataclass(frozen=True)
class Member:
    spec_file: Path
    job: JobSpec  # the model's job (build, gate, deploy; the retrain hook starts it)
    jenkins_url: str | None
    monitor: JobSpec | None = None  # Jenkinsfile.monitor's scheduled job, when rendered

    @property
    def jobs(self) -> tuple[JobSpec, ...]:
        return (self.job,) if self.monitor is None else (self.job, self.monitor)


@dataclass(frozen=True)
class Fleet:
    members: tuple[Member, ...]
    concurrency: int = 8

    def desired(self) -> list[DesiredJob]:
        from ...targets.jenkins_job import environment

        env = environment()
        return [render_job(job, env) for m in self.members for job in m.jobs]

    @property
    def sources(self) -> set[str]:
        return {m.job.source for m in self.members}

    def spec_url(self) -> str | None:
        """The controller the specs name, when they agree; flags/env win over it anyway."""
        urls = {m.jenkins_url for m in self.members if m.jenkins_url}
        if len(urls) > 1:
            raise UsageError("the specs name different ci.jenkins.url values "
                             f"({', '.join(sorted(urls))}): pass --url or set JENKINS_URL")
        return next(iter(urls), None)


def _load(spec_file: Path) -> list[Member]:
    """The job of a model's spec, or one job per model when it is a monorepo's root spec."""
    from ...monorepo import is_monorepo, load_monorepo
    from ...spec_loader import load_spec

    if is_monorepo(spec_file.parent):
        mono = load_monorepo(spec_file.parent)
        members = []
        for m in mono.models:
            job = job_spec_from_spec(m.spec, f"{m.folder}/{SPEC_FILENAME}", m.folder)
            members.append(Member(spec_file.parent / m.folder / SPEC_FILENAME, job,
                                  m.spec.ci.jenkins.url, monitor_job_spec(m.spec, job)))
        return members
    spec = load_spec(spec_file)
    job = job_spec_from_spec(spec, str(spec_file))
    return [Member(spec_file, job, spec.ci.jenkins.url, monitor_job_spec(spec, job))]


def single(project_dir: Path) -> Fleet:
    from ...monorepo import repository_root

    # In a model folder of a monorepo: every model's job, so that `prune` from there never
    # takes the other models' jobs (same repository) for leftovers.
    return Fleet(tuple(_load(repository_root(project_dir) / SPEC_FILENAME)))


def load_fleet(path: Path) -> Fleet:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the fleet file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("repositories"), list):
        raise UsageError(f"{path}: repositories: expected a list of mlgen.yaml paths")
    unknown = set(data) - {"repositories", "concurrency"}
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; "
                         "allowed: repositories, concurrency")
    concurrency = data.get("concurrency", 8)
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 64:
        raise UsageError(f"{path}: concurrency: expected a whole number from 1 to 64")
    members = []
    for index, entry in enumerate(data["repositories"]):
        raw = entry.get("path") if isinstance(entry, dict) else entry
        if not isinstance(raw, str) or not raw:
            raise UsageError(f"{path}: repositories[{index}]: expected a path or {{path: ...}}")
        spec_file = (path.parent / raw)
        if spec_file.is_dir():
            spec_file = spec_file / SPEC_FILENAME
        members.extend(_load(spec_file))
    if not members:
        raise MlgenError(f"{path}: repositories: the list is empty")
    return Fleet(tuple(members), concurrency)
