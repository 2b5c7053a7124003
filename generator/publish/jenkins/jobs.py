"""Plan, apply, prune and trigger Jenkins jobs: the stages after `jenkins_jobs` rendered them.

`plan` reads the controller (at most one request per job: its config.xml; plus one listing
when something must be created) and returns a plain `Plan`; `apply` carries a plan out, folders
before their children; `prune` deletes only jobs that carry mlgen's marker. The client is
passed in (see `mlgen.integrations.jenkins.JenkinsClient`), so this module never imports
python-jenkins.

The optional hash cache lets an unchanged re-apply make no request at all. Unlike
jenkins-job-builder's cache it never hides a job: it stores, per controller, the digest of
the config mlgen last saw *on the server*, is dropped for every job that prune deletes, and
`--refresh` ignores it; jobs whose desired config changed are always read first, so an edit
made in the UI is reported before it is overwritten.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from ...errors import MlgenError
from ...integrations.jenkins import AlreadyExists, NoSuchJob, job_path
from ...targets.jenkins_job import (
    JAVA_CLASS,
    MULTIBRANCH_CLASS,
    DesiredJob,
    config_digest,
    description_of,
    normalise_xml,
    parse_marker,
    render_folder,
    root_tag,
    xml_diff,
)

T = TypeVar("T")
R = TypeVar("R")
Action = Literal["create", "update", "unchanged", "conflict"]
FOLDER_CLASS = "com.cloudbees.hudson.plugins.folder.Folder"


class Client(Protocol):
    """What plan/apply need from Jenkins (implemented by integrations.jenkins.JenkinsClient)."""

    def get_config(self, name: str) -> str | None: ...
    def list_items(self) -> Mapping[str, Any]: ...
    def create_item(self, name: str, config_xml: str, *, folder: bool = False) -> None: ...
    def reconfigure(self, name: str, config_xml: str) -> None: ...
    def delete(self, name: str) -> None: ...
    def build(self, name: str, parameters: Mapping[str, str]) -> int: ...
    def scan(self, name: str) -> None: ...
    def item_class(self, name: str) -> str | None: ...
    def queue_item(self, name: str, number: int) -> dict[str, Any]: ...
    def build_info(self, name: str, number: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Change:
    desired: DesiredJob
    action: Action
    diff: str = ""
    edited_on_server: bool = False  # the live config no longer matches what mlgen wrote
    note: str = ""
    cached: bool = False  # decided from the local cache, without reading the server

    @property
    def name(self) -> str:
        return self.desired.name


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    folders: tuple[str, ...] = ()  # to create, parents first

    def counts(self) -> dict[str, int]:
        out = {"folders": len(self.folders)}
        for action in ("create", "update", "unchanged", "conflict"):
            out[action] = sum(1 for c in self.changes if c.action == action)
        return out


@dataclass
class HashCache:
    """name -> digest of the config mlgen last saw on this controller (see module docstring)."""

    path: Path | None
    entries: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def location(url_key: str) -> Path:
        from ...userdirs import user_cache_dir

        digest = hashlib.sha256(url_key.encode()).hexdigest()[:16]
        return user_cache_dir() / f"jenkins-{digest}.json"

    @classmethod
    def load(cls, path: Path) -> HashCache:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}  # no cache, or a broken one: read the server
        return cls(path, {str(k): str(v) for k, v in data.get("jobs", {}).items()})

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"jobs": dict(sorted(self.entries.items()))}, indent=1), "utf-8")
        tmp.replace(self.path)


def _parallel(fn: Callable[[T], R], items: Iterable[T], workers: int,
              progress: Callable[[], None] | None = None) -> list[R]:
    items = list(items)
    if not items:
        return []

    def run(item: T) -> R:
        out = fn(item)
        if progress:
            progress()
        return out

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(run, items))


def check_unique(desired: Iterable[DesiredJob]) -> list[DesiredJob]:
    seen: dict[str, DesiredJob] = {}
    for job in desired:
        if job.name in seen and seen[job.name].job.source != job.job.source:
            raise MlgenError(f"job {job.name}: described by both {seen[job.name].job.source} and "
                             f"{job.job.source}; give one of them another ci.jenkins.folder")
        seen[job.name] = job
    return list(seen.values())


def plan(client: Client, desired: Iterable[DesiredJob], *, cache: HashCache | None = None,
         refresh: bool = False, workers: int = 8,
         progress: Callable[[], None] | None = None) -> Plan:
    jobs = check_unique(desired)

    def decide(job: DesiredJob) -> Change:
        if cache is not None and not refresh and cache.entries.get(job.name) == job.digest:
            return Change(job, "unchanged", cached=True)
        live = client.get_config(job.name)
        if live is None:
            return Change(job, "create")
        return compare(job, live)

    changes = _parallel(decide, jobs, workers, progress)
    folders: list[str] = []
    wanted = sorted({f for c in changes if c.action == "create" for f in c.desired.job.folders},
                    key=lambda f: (f.count("/"), f))
    if wanted:
        items = client.list_items()
        for folder in wanted:
            item = items.get(folder)
            if item is None:
                folders.append(folder)
            elif getattr(item, "java_class", FOLDER_CLASS) != FOLDER_CLASS:
                raise MlgenError(f"folder {folder}: exists on Jenkins but is not a folder "
                                 f"({item.java_class}); change ci.jenkins.folder")
    return Plan(tuple(sorted(changes, key=lambda c: c.name)), tuple(folders))


def compare(job: DesiredJob, live: str) -> Change:
    what = f"job {job.name}"
    marker = parse_marker(description_of(live, what))
    if root_tag(live, what) != root_tag(job.xml, what):
        return Change(job, "conflict", note=(
            f"is a {root_tag(live, what)} on Jenkins but mlgen.yaml asks for a "
            f"{JAVA_CLASS[job.job.kind]}: delete it on Jenkins (its history goes with it), "
            "then apply"))
    if marker is None:
        return Change(job, "conflict", diff=xml_diff(live, job.xml, job.name), note=(
            "exists on Jenkins without mlgen's marker (not created by mlgen): rerun apply with "
            "--adopt to take it over"))
    edited = config_digest(live, what) != marker.digest
    if normalise_xml(live, what) == normalise_xml(job.xml, what):
        return Change(job, "unchanged")
    note = "changed on the server since mlgen applied it (an edit in the UI?)" if edited else ""
    return Change(job, "update", xml_diff(live, job.xml, job.name), edited, note)


@dataclass(frozen=True)
class ApplyResult:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    folders: tuple[str, ...]


def apply(client: Client, the_plan: Plan, *, cache: HashCache | None = None, adopt: bool = False,
          workers: int = 8, progress: Callable[[], None] | None = None) -> ApplyResult:
    conflicts = [c for c in the_plan.changes if c.action == "conflict"
                 and not (adopt and "--adopt" in c.note)]
    if conflicts:
        raise MlgenError("\n".join(f"job {c.name}: {c.note}" for c in conflicts))
    # Folders level by level: a child's createItem goes to its parent's URL.
    levels: dict[int, list[str]] = {}
    for folder in the_plan.folders:
        levels.setdefault(folder.count("/"), []).append(folder)
    for depth in sorted(levels):
        _parallel(lambda f: _create_folder(client, f), levels[depth], workers, progress)

    def push(change: Change) -> str:
        if change.action != "create":
            client.reconfigure(change.name, change.desired.xml)
            return change.name
        try:
            client.create_item(change.name, change.desired.xml)
        except AlreadyExists:
            # A retried createItem whose first answer was lost finds its own job: fine. Any
            # other job there was made by someone else after the plan was read.
            live = client.get_config(change.name)
            if live is None or normalise_xml(live) != normalise_xml(change.desired.xml):
                raise MlgenError(f"job {change.name}: created on Jenkins by someone else while "
                                 "mlgen was applying; run plan again") from None
        return change.name

    todo = [c for c in the_plan.changes if c.action in {"create", "update", "conflict"}]
    _parallel(push, todo, workers, progress)
    if cache is not None:
        for change in the_plan.changes:
            cache.entries[change.name] = change.desired.digest
        cache.save()
    return ApplyResult(tuple(c.name for c in todo if c.action == "create"),
                       tuple(c.name for c in todo if c.action != "create"), the_plan.folders)


def _create_folder(client: Client, folder: str) -> None:
    try:
        client.create_item(folder, render_folder("Folder created by mlgen for model jobs."),
                           folder=True)
    except AlreadyExists:
        pass  # created meanwhile (another run, or a retried request that had succeeded)


# -- prune -------------------------------------------------------------------------------------
def plan_prune(client: Client, keep: Iterable[str], sources: set[str] | None) -> list[str]:
    """Marked jobs no spec describes; `sources` limits it to jobs from those repositories."""
    keep = set(keep)
    doomed = []
    for name, item in client.list_items().items():
        marker = parse_marker(getattr(item, "description", ""))
        if marker is None or name in keep:
            continue
        if sources is None or marker.source in sources:
            doomed.append(name)
    return sorted(doomed)


def prune(client: Client, names: Iterable[str], *, cache: HashCache | None = None,
          workers: int = 4) -> list[str]:
    names = list(names)
    _parallel(client.delete, names, workers)
    if cache is not None:  # unlike JJB: a pruned job re-added later is created again
        for name in names:
            cache.entries.pop(name, None)
        cache.save()
    return names


# -- trigger -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildOutcome:
    job: str
    queue_id: int
    number: int | None
    url: str | None
    result: str | None  # SUCCESS, FAILURE, UNSTABLE, ABORTED, CANCELLED, or None on timeout
    scan_seconds: float | None = None  # waited for a branch scan to create the job; None: no scan


def trigger(client: Client, job: str, parameters: Mapping[str, str], *, timeout: float = 600.0,
            poll: float = 2.0, wait: bool = True, scan_timeout: float = 300.0,
            on_progress: Callable[[str], None] | None = None) -> BuildOutcome:
    """Start a build and follow its queue item to a build number and a result.

    A branch job of a multibranch project exists only once Jenkins has indexed the branches,
    and a project created through the API is not indexed until someone asks: right after the
    first `apply` the build finds no job. Then the project is scanned and the branch job
    awaited (at most `scan_timeout` seconds) before the build is started.
    """
    say = on_progress or (lambda _msg: None)
    scanned: float | None = None
    try:
        queue_id = client.build(job, parameters)
    except NoSuchJob as missing:
        scanned = wait_for_branch(client, missing, timeout=scan_timeout, poll=poll, say=say)
        queue_id = client.build(job, parameters)
    say(f"job {job}: queued as item {queue_id}")
    deadline = time.monotonic() + timeout
    number: int | None = None
    url: str | None = None
    while number is None:
        item = client.queue_item(job, queue_id)
        if item.get("cancelled"):
            return BuildOutcome(job, queue_id, None, None, "CANCELLED")
        executable = item.get("executable")
        if executable:
            number, url = int(executable["number"]), executable.get("url")
            say(f"job {job}: build #{number} started {url or ''}".rstrip())
            break
        if time.monotonic() >= deadline:
            raise MlgenError(f"job {job}: queue item {queue_id} did not start within "
                             f"{timeout:g} s ({item.get('why') or 'waiting'})")
        time.sleep(poll)
    if not wait:
        return BuildOutcome(job, queue_id, number, url, None, scanned)
    while True:
        info = client.build_info(job, number)
        if not info.get("building") and info.get("result"):
            return BuildOutcome(job, queue_id, number, info.get("url") or url, info["result"],
                                scanned)
        if time.monotonic() >= deadline:
            raise MlgenError(f"job {job}: build #{number} still running after {timeout:g} s "
                             f"({url or ''})")
        time.sleep(poll)


def wait_for_branch(client: Client, missing: NoSuchJob, *, timeout: float, poll: float,
                    say: Callable[[str], None]) -> float:
    """Scan the multibranch project `missing.job` belongs to until its branch job appears.

    Returns the seconds waited. Raises the build's "no such job" error, made more precise,
    when the parent is not a multibranch project; MlgenError when the branch does not appear.
    """
    project, _, branch = missing.job.rpartition("/")
    kind = client.item_class(project) if project else None
    if kind != MULTIBRANCH_CLASS:
        raise MlgenError(str(missing) + _why_missing(project, kind))
    client.scan(project)
    say(f"job {project}: branch {branch} not indexed yet; requested a branch scan "
        "(Scan Multibranch Pipeline Now)")
    started = time.monotonic()
    # Small repositories index in a second or two: look early, then every `poll` seconds.
    pause = min(poll, 0.25)
    last = ""
    while True:
        waited = time.monotonic() - started
        if client.item_class(missing.job) is not None:
            say(f"job {project}: branch {branch} indexed after {waited:.0f} s")
            return waited
        if waited >= timeout:
            raise MlgenError(
                f"job {missing.job}: the branch scan of {project} ran, but branch {branch} was "
                f"not found within {timeout:g} s. Check that branch {branch} exists in the "
                "repository (name another with --branch), that the credentials of the job's "
                "branch source can read the repository, and the scan log at "
                f"{missing.url}{job_path(project)}indexing/console (a long scan may still be "
                "running: raise --scan-timeout)")
        line = f"waiting for Jenkins to index branch {branch} of {project} ... {waited:.0f} s"
        if line != last:  # early looks within the same second print once
            say(line)
            last = line
        time.sleep(min(pause, max(0.0, timeout - waited)))
        pause = min(pause * 2, poll)


def _why_missing(parent: str, kind: str | None) -> str:
    """What the parent of a missing job says about the mistake (nothing for a plain folder)."""
    if not parent or kind == FOLDER_CLASS:
        return ""
    if kind is None:
        return f"; {parent} does not exist either"
    if kind == JAVA_CLASS["pipeline"]:
        return f"; {parent} is a pipeline job, which has no branches: drop --branch"
    return f"; {parent} is a {kind.rpartition('.')[2] or 'item'}, not a multibranch project"
