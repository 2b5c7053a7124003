"""Sync pull requests across a fleet of repositories, politely.

Bounded concurrency (a small thread pool); one WritePacer per token so mutating requests keep
GitHub's minimum spacing however many workers run; primary limits (X-RateLimit-Remaining and
Reset) make every worker wait for the reset before it runs dry; secondary limits (403/429 with
Retry-After) are retried by PyGithub's GithubRetry as configured in
mlgen.integrations.github.client.
A JSON state file records each finished repository with the spec/tree it saw, so a rerun
skips what is done and a crash loses at most the repositories in flight.

A repository's own template overrides are rendered only when its entry in the fleet file says
`trust_templates: true` (or --trust-templates names it): the fleet file is the operator's, the
repository's mlgen.yaml is not.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ...errors import MlgenError, UsageError

DONE = ("up-to-date", "created", "updated", "unchanged", "would-change")


@dataclass(frozen=True)
class FleetOptions:
    concurrency: int = 4
    dry_run: bool = False
    state_path: Path | None = None
    report_path: Path | None = None
    rate_limit_floor: int = 100  # wait for the reset when fewer calls than this remain
    # OWNER/NAME (lower case) whose own template overrides render, besides the entries that
    # say trust_templates: true (an org/topic search finds repositories a flag may name)
    trusted_templates: frozenset[str] = frozenset()


TRUST_KEY = "trust_templates"
# Where an operator opts a repository in; the note on an ignored override points here.
FLEET_TRUST_HINT = f"`{TRUST_KEY}: true` on its entry in the fleet file"
CLI_TRUST_HINT = "`mlgen sync --pr --trust-templates OWNER/NAME`"


def read_fleet_file(path: Path) -> list[dict[str, str]]:
    """YAML or JSON: a list of "owner/name" (or {repository, branch, trust_templates}), or
    {org, topic}. A `trust_templates` given comes back as "true" or "false"."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: {exc}") from exc
    if isinstance(data, dict) and "repositories" in data:
        data = data["repositories"]
    if isinstance(data, dict) and "org" in data:
        if TRUST_KEY in data:
            raise UsageError(f"{path}: {TRUST_KEY} is set per repository, not for a whole org "
                             "or topic: list the repositories to trust by OWNER/NAME")
        return [{"org": str(data["org"]), "topic": str(data.get("topic", ""))}]
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a list of repositories or {{org:, topic:}}")
    out = []
    for i, item in enumerate(data):
        entry = {"repository": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or "/" not in str(entry.get("repository", "")):
            raise UsageError(f"{path}: item {i + 1}: expected OWNER/NAME")
        trust = entry.get(TRUST_KEY, False)
        if not isinstance(trust, bool):  # "yes" or 1 would be a guess about what was meant
            raise UsageError(f"{path}: item {i + 1}: {TRUST_KEY}: expected true or false, "
                             f"got {trust!r}")
        out.append({k: str(v).lower() if k == TRUST_KEY else str(v) for k, v in entry.items()})
    return out


def expand(client: Any, entries: list[dict[str, str]]) -> list[dict[str, str]]:
    """Turn an {org, topic} entry into its repositories (one search, paginated)."""
    out: list[dict[str, str]] = []
    for e in entries:
        if "org" not in e:
            out.append(e)
            continue
        query = f"org:{e['org']}" + (f" topic:{e['topic']}" if e.get("topic") else "")
        found = client.call(f"search {query}", lambda q=query: list(
            client.gh.search_repositories(q)))
        out += [{"repository": r.full_name, "branch": e.get("branch") or r.default_branch}
                for r in found]
    return out


class FleetState:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.done: dict[str, dict[str, Any]] = {}
        if path and path.is_file():
            try:
                self.done = json.loads(path.read_text(encoding="utf-8")).get("done", {})
            except ValueError as exc:
                raise UsageError(f"{path}: not a fleet state file ({exc})") from exc

    def record(self, outcome: dict[str, Any]) -> None:
        with self.lock:
            if outcome.get("status") in DONE:
                self.done[str(outcome["repository"])] = outcome
            if self.path:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"done": self.done}, indent=1), encoding="utf-8")
                tmp.replace(self.path)


def run_fleet(client: Any, entries: list[dict[str, str]], options: FleetOptions,
              sync_one: Callable[..., dict[str, Any]] | None = None,
              progress: TextIO | None = sys.stderr) -> list[dict[str, Any]]:
    """Sync every repository; returns one outcome dict per repository (state-skipped included)."""
    from .sync_pr import TRUSTED, OverridePolicy, sync_pull_request

    sync = sync_one or sync_pull_request
    state = FleetState(options.state_path)
    todo = [e for e in expand(client, entries) if e["repository"] not in state.done]
    outcomes = [dict(state.done[e["repository"]], skipped=True)
                for e in entries if e.get("repository") in state.done]
    total, finished = len(todo), 0
    start = time.monotonic()

    def one(entry: dict[str, str]) -> dict[str, Any]:
        client.rate_limit_pause(options.rate_limit_floor)
        t0 = time.monotonic()
        trusted = (entry.get(TRUST_KEY) == "true"
                   or entry["repository"].lower() in options.trusted_templates)
        overrides = TRUSTED if trusted else OverridePolicy(see=FLEET_TRUST_HINT)
        try:
            outcome = sync(client, entry["repository"], dry_run=options.dry_run,
                           base_branch=entry.get("branch") or None, overrides=overrides)
        except MlgenError as exc:
            outcome = {"repository": entry["repository"], "status": "failed", "error": str(exc)}
        outcome["seconds"] = round(time.monotonic() - t0, 3)
        if not options.dry_run:  # a dry run changed nothing, so it must not mark work done
            state.record(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        for fut in as_completed([pool.submit(one, e) for e in todo]):
            outcomes.append(fut.result())
            finished += 1
            if progress is not None:
                _progress(progress, finished, total, start)
    if progress is not None and total:
        progress.write("\n")
    if options.report_path:
        options.report_path.write_text(json.dumps(
            {"summary": summarize(outcomes), "repositories": outcomes}, indent=1),
            encoding="utf-8")
    return outcomes


def _progress(out: TextIO, done: int, total: int, start: float) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / max(time.monotonic() - start, 1e-9)
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {rate:.1f} repo/s")
    out.flush()


def summarize(outcomes: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        key = "skipped (done earlier)" if o.get("skipped") else str(o.get("status"))
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def summary_table(outcomes: list[dict[str, Any]]) -> str:
    rows = [("repository", "status", "pull request / error")]
    for o in sorted(outcomes, key=lambda o: str(o["repository"])):
        if o.get("status") != "up-to-date" or o.get("conflicts"):
            conflicts = len(o.get("conflicts") or ())
            rows.append((str(o["repository"]), str(o.get("status")),
                         str(o.get("url") or o.get("error") or "")
                         + (f" ({conflicts} conflict(s) to resolve)" if conflicts else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    totals = ", ".join(f"{v} {k}" for k, v in summarize(outcomes).items())
    notes = [f"{o['repository']}: {note}"
             for o in sorted(outcomes, key=lambda o: str(o["repository"]))
             for note in o.get("notes") or ()]
    return "\n".join(lines + [f"total: {totals}"] + notes)


# ---------------------------------------------------------------------- `mlgen sync --pr`


@dataclass(frozen=True)
class RemoteRequest:
    """What `mlgen sync --pr` was asked, as parsed by the command."""

    repository: str | None = None  # one repository, or
    fleet: Path | None = None  # a fleet file
    base: str | None = None  # the base branch, when not the repository's default
    dry_run: bool = False
    conflict: str = "inline"
    restore: tuple[str, ...] | bool = ()
    templates: tuple[Path, ...] = ()
    trusted_templates: frozenset[str] = frozenset()  # OWNER/NAME, lower case
    as_json: bool = False
    concurrency: int = 4
    state_path: Path | None = None
    report_path: Path | None = None


def run_remote_sync(request: RemoteRequest, client: Any = None,
                    render: Callable[[str], Any] | None = None) -> tuple[int, str, str]:
    """Sync one repository or a fleet. Returns (exit code, stdout text, stderr text)."""
    from functools import partial

    from ...integrations.github.client import connect
    from .sync_pr import TRUSTED, OverridePolicy, sync_pull_request

    client = client or connect()
    sync = partial(sync_pull_request, render=render, conflict=request.conflict,
                   restore=request.restore, extra_templates=request.templates)
    if request.fleet is not None:
        entries = [{**e, "branch": e.get("branch") or request.base or ""}
                   for e in read_fleet_file(request.fleet)]
        outcomes = run_fleet(client, entries, FleetOptions(
            request.concurrency, request.dry_run, request.state_path, request.report_path,
            trusted_templates=request.trusted_templates), sync,
            progress=sys.stderr)  # looked up now, not when the module was imported
        failed = [o for o in outcomes if o.get("status") == "failed"]
        out = (json.dumps({"summary": summarize(outcomes), "repositories": outcomes}, indent=2)
               if request.as_json else summary_table(outcomes))
        return (1 if failed else 0), out, ""
    if not request.repository:
        raise UsageError("which GitHub repository? pass --repo OWNER/NAME")
    outcome = sync(client, request.repository, dry_run=request.dry_run,
                   base_branch=request.base,
                   overrides=TRUSTED if request.repository.lower() in request.trusted_templates
                   else OverridePolicy(see=CLI_TRUST_HINT))
    conflicts = list(outcome.get("conflicts") or ())
    code = 1 if conflicts else 0
    if request.as_json:
        return code, json.dumps(outcome, indent=2), ""
    return code, _outcome_text(outcome), _conflicts_text(outcome)


def _outcome_text(o: dict[str, Any]) -> str:
    from ...sync.plan import ACTIONS

    status = str(o["status"])
    head = {"up-to-date": "already up to date; nothing to do",
            "would-change": "would open or update a pull request (dry run: nothing written)",
            "created": f"opened pull request #{o.get('pr')} {o.get('url')}",
            "updated": f"updated pull request #{o.get('pr')} {o.get('url')}",
            "unchanged": f"pull request #{o.get('pr')} already holds these changes {o.get('url')}",
            }.get(status, status)
    lines = [f"{o['repository']}: {head}"] + [f"note: {n}" for n in o.get("notes") or ()]
    for path, action in sorted((o.get("files") or {}).items()):
        lines.append(f"{action:>10}  {path}: {ACTIONS.get(action, action)}")
    return "\n".join(lines)


def _conflicts_text(o: dict[str, Any]) -> str:
    conflicts = list(o.get("conflicts") or ())
    if not conflicts:
        return ""
    where = f"on branch mlgen/sync (pull request #{o['pr']})" if o.get("pr") else "after the sync"
    return (f"{len(conflicts)} file(s) need you {where}: {', '.join(conflicts)}. Resolve them "
            "there, or re-run with --conflict ours|theirs.")
