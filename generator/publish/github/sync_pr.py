"""Remote sync against a GitHub repository: the same merge as `mlgen sync`, then one commit and
one PR.

The plan is `mlgen.sync.plan.plan_sync` itself, so a hand edit survives exactly as it does locally:
base = what `.mlgen/lock.json` says mlgen generated last, ours = the file on the branch,
theirs = the new render. Only the bytes it needs are downloaded: one GraphQL query
(`integrations.github_snapshot`) gives the branch's commit with the text of `mlgen.yaml` and
the lock, and the sync branch with its open PR; the commit's tree is then read once, by SHA.
Every generated path whose blob SHA equals the fresh render, or the lock's last generated
text, is known without a download. An up-to-date repository costs those two requests; a
changed one reads one more blob per hand-edited file only. Rendering runs locally from the
repository's own spec (no network while rendering, as everywhere in mlgen).

The repository's own template overrides (`templates:` in its spec) are rendered only when the
operator trusts that repository for templates (an OverridePolicy, from the bot's
--trust-templates, a fleet entry's `trust_templates: true` or sync's --trust-templates), never
because the spec asks; ignored overrides are named in a note the PR body, the bot's comment and
the dry-run output repeat. Every template renders in Jinja's sandbox either way.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgen.models.contract import SPEC_FILENAME

from ... import __version__
from ...errors import MlgenError, TemplateSandboxError
from ...render import Artifact
from ...sync.lock import LOCK_PATH, Lock, TemplateSet, decode_text, encode_text, sha256_text
from .template_overrides import fetch_template_overrides

if TYPE_CHECKING:
    from ...integrations.github.client import GitHubClient, Repository, RepoTree
    from ...integrations.github.graphql import Snapshot

SPEC_PATH = SPEC_FILENAME
TITLE = "mlgen: update generated pipeline files"


@dataclass(frozen=True)
class OverridePolicy:
    """May a remote render use the repository's own template overrides?

    mlgen renders remote repositories with the organisation's token, so what the repository
    supplies cannot decide this: the operator does, per repository. `reason` and `see` explain
    an ignored override in the note (`see`: where the operator opts in; empty for none).
    """

    trusted: bool = False
    reason: str = "repository not trusted for templates"
    see: str = "--trust-templates"

    def note(self, folder: str) -> str:
        text = f"template overrides in {folder} ignored: {self.reason}"
        return text + (f" (see {self.see})" if self.see else "")


TRUSTED = OverridePolicy(trusted=True)
# A fork's pull request is content from outside the organisation: whatever the trust setting
# of the repository it targets, its overrides are never rendered.
FORK = OverridePolicy(reason="the pull request comes from a fork, and a fork's overrides are "
                      "never rendered; it is checked with the built-in templates", see="")


@dataclass(frozen=True)
class RemoteRender:
    """What mlgen generates for one spec text, with the fingerprints the lock records."""

    artifacts: tuple[Artifact, ...]
    templates: TemplateSet = field(default_factory=TemplateSet)
    spec_sha256: str = ""
    notes: tuple[str, ...] = ()  # e.g. the overrides that were ignored, and why
    default_branch: str | None = None  # a monorepo's (from its models' specs)


# A stand-in renderer (tests, benchmarks): spec text -> path -> bytes, or a full RemoteRender.
Render = Callable[[str], "RemoteRender | dict[str, bytes]"]


@dataclass(frozen=True)
class RemotePlan:
    repository: str
    base_tree: str
    changes: dict[str, bytes | None] = field(default_factory=dict)
    conflicts: tuple[str, ...] = ()
    unchanged: int = 0
    default_branch: str | None = None  # the spec's ci.github.default_branch
    modes: dict[str, int] = field(default_factory=dict)
    actions: tuple[tuple[str, str], ...] = ()  # (path, sync action) of every path that changes
    templates: TemplateSet | None = None
    previous_templates: TemplateSet | None = None
    previous_mlgen: str = ""
    conflict_mode: str = "inline"
    downloaded: tuple[str, ...] = ()  # paths whose blobs had to be read
    snapshot: Snapshot | None = None  # what was read: base commit, sync branch, open PR
    notes: tuple[str, ...] = ()  # the render's notes (ignored template overrides)

    @property
    def up_to_date(self) -> bool:
        return not self.changes


def render_remote(spec_text: str) -> dict[str, bytes]:
    """What the built-in templates (and MLGEN_TEMPLATES) generate for this spec text."""
    return {a.path: encode_text(a.text, False)
            for a in render_spec(spec_text, SPEC_PATH, lambda path: None).artifacts}


def render_spec(spec_text: str, source: str, fetch: Callable[[str], bytes | None],
                override_paths: Sequence[str] = (),
                extra_templates: Sequence[Path] = (),
                overrides: OverridePolicy = OverridePolicy()) -> RemoteRender:
    """Render with the real renderer in a scratch folder holding the repository's template
    overrides (`templates:` in the spec), fetched with `fetch(path)` from `override_paths`
    when `overrides` trusts them; otherwise with the built-in templates (plus the operator's
    `extra_templates` and MLGEN_TEMPLATES) and a note saying the overrides were ignored."""
    from ...monorepo import is_root_spec_text
    from ...project import render_artifacts
    from ...render import BUILTIN_TEMPLATES
    from ...spec_loader import parse_spec
    from ...sync.lock import template_set

    if is_root_spec_text(spec_text):  # a monorepo: every model, one pull request
        from ...monorepo_remote import render_monorepo_remote

        return render_monorepo_remote(spec_text, source, fetch, override_paths,
                                      extra_templates, overrides)
    spec = parse_spec(spec_text, source)
    notes: tuple[str, ...] = ()
    if spec.templates and not overrides.trusted:
        notes = (overrides.note(spec.templates),)
        spec = spec.model_copy(update={"templates": None})
    with tempfile.TemporaryDirectory(prefix="mlgen-remote-") as tmp:
        root = Path(tmp)
        if spec.templates:
            fetch_template_overrides(spec.templates, source, override_paths, fetch, root)
        used: dict[str, str] = {}
        try:
            artifacts = render_artifacts(spec, root, (), extra_templates, used_templates=used)
        except TemplateSandboxError as exc:
            raise _in_repository(exc, root, source) from None
        templates = template_set(used, BUILTIN_TEMPLATES, root)
    return RemoteRender(tuple(artifacts), templates, sha256_text(spec_text), notes)


def _in_repository(exc: TemplateSandboxError, root: Path, source: str) -> TemplateSandboxError:
    """Name a template fetched into the scratch folder as OWNER/NAME:path, not /tmp/..."""
    try:
        rel = Path(exc.file).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return exc
    repository = source.rsplit(":", 1)[0] if ":" in source else source
    return exc.relocated(f"{repository}:{rel}")


def _adapt(result: RemoteRender | dict[str, bytes], spec_text: str) -> RemoteRender:
    if isinstance(result, RemoteRender):
        return result
    return RemoteRender(tuple(Artifact(p, decode_text(d)[0]) for p, d in sorted(result.items())),
                        TemplateSet(), sha256_text(spec_text))


class TreeReader:
    """`read_current`/`read_mode` for plan_sync, backed by one tree listing.

    A blob whose SHA is the new render's or the lock's last generated text is known locally;
    only other blobs (hand-edited files, `.rej` files) are downloaded, each at most once.
    """

    def __init__(self, client: GitHubClient, repo: Repository, tree: RepoTree,
                 known: Mapping[str, bytes]) -> None:
        self.client, self.repo, self.tree = client, repo, tree
        self.known = dict(known)
        self.downloaded: list[str] = []

    def read(self, path: str) -> bytes | None:
        from ...integrations.github.client import read_blob

        sha = self.tree.blob_sha(path)
        if sha is None:
            return None
        if sha not in self.known:
            self.known[sha] = read_blob(self.client, self.repo, sha)
            self.downloaded.append(path)
        return self.known[sha]

    def mode(self, path: str) -> int | None:
        entry = self.tree.entries.get(path)
        if entry is None or entry.type != "blob" or entry.mode == "120000":
            return None
        return int(entry.mode, 8) & 0o777


def _blob_shas(texts: Sequence[str]) -> dict[str, bytes]:
    from ...integrations.github.client import git_blob_sha

    out = {}
    for text in texts:
        data = encode_text(text, False)
        out[git_blob_sha(data)] = data
    return out


def _clean_lock(rendered: RemoteRender) -> bytes:
    """The lock a sync leaves when every file is exactly the render (the up-to-date case)."""
    from ...sync.plan import lock_after_render

    return lock_after_render(None, rendered.artifacts, rendered.templates,
                             rendered.spec_sha256).to_json()


def _matches_render(tree: RepoTree, rendered: RemoteRender) -> bool:
    from ...integrations.github.client import git_blob_sha

    for a in rendered.artifacts:
        entry = tree.entries.get(a.path)
        if (entry is None or entry.sha != git_blob_sha(encode_text(a.text, False))
                or int(entry.mode, 8) & 0o777 != a.mode):
            return False
    return tree.blob_sha(LOCK_PATH) == git_blob_sha(_clean_lock(rendered))


def plan_remote(client: GitHubClient, repository: str, ref: str = "HEAD",
                render: Render | None = None, *, conflict: str = "inline",
                restore: Collection[str] | bool = (),
                extra_templates: Sequence[Path] = (),
                overrides: OverridePolicy = OverridePolicy()) -> RemotePlan:
    """Read the snapshot (one GraphQL query) and the tree (one REST read by SHA), render, and
    plan the sync as `mlgen sync` would. `ref`: "HEAD" (default branch), a branch or a SHA."""
    from ...integrations.github.client import SYNC_BRANCH, read_blob, read_tree
    from ...integrations.github.graphql import read_snapshot
    from ...sync.plan import plan_sync

    snap = read_snapshot(client, repository, ref, spec_path=SPEC_PATH, lock_path=LOCK_PATH,
                         sync_branch=SYNC_BRANCH)
    repo = client.repo(repository)
    tree = read_tree(client, repo, snap.tree)

    def file_bytes(path: str) -> bytes | None:
        at = snap.files.get(path)
        if at is None:
            return None
        return at.data if at.data is not None else read_blob(client, repo, at.sha)

    spec_data = file_bytes(SPEC_PATH)
    if spec_data is None:
        where = f"its default branch ({snap.branch})" if ref == "HEAD" else ref
        raise MlgenError(f"{repository}: no {SPEC_PATH} on {where}; commit one there first "
                         "(`mlgen init` writes it)")
    spec_text = decode_text(spec_data)[0]
    source = f"{repository}:{SPEC_PATH}"
    if render is None or render is render_remote:
        def fetch(path: str) -> bytes | None:
            sha = tree.blob_sha(path)
            return read_blob(client, repo, sha) if sha else None
        rendered = render_spec(spec_text, source, fetch, sorted(tree.entries), extra_templates,
                               overrides)
    else:
        rendered = _adapt(render(spec_text), spec_text)
    default_branch = rendered.default_branch or _default_branch(spec_text, source)
    common: dict[str, Any] = {"default_branch": default_branch, "conflict_mode": conflict,
                              "templates": rendered.templates, "snapshot": snap,
                              "notes": rendered.notes}
    if _matches_render(tree, rendered):
        return RemotePlan(repository, tree.sha, unchanged=len(rendered.artifacts), **common)
    lock_data = file_bytes(LOCK_PATH)
    lock = Lock.from_json(lock_data, f"{repository}:{LOCK_PATH}") if lock_data else None
    known = _blob_shas([a.text for a in rendered.artifacts] + [
        e.base for e in (lock.files.values() if lock else ()) if e.base is not None])
    reader = TreeReader(client, repo, tree, known)
    plan = plan_sync(rendered.artifacts, lock, reader.read, read_mode=reader.mode,
                     conflict=conflict, restore=restore, templates=rendered.templates,
                     spec_sha256=rendered.spec_sha256)
    changes: dict[str, bytes | None] = {}
    modes: dict[str, int] = {}
    for write in plan.file_writes():
        if write.path != LOCK_PATH:
            changes[write.path] = write.data
            modes[write.path] = write.mode
    # The lock alone changes when only its packing, mlgen's version or the template hash
    # moved: that is no reason for a pull request. Record it when a file changes, when the
    # repository has no lock yet, or when what a future merge relies on changed.
    if changes or lock is None or dict(lock.files) != dict(plan.lock.files):
        changes[LOCK_PATH] = plan.lock.to_json()
        modes[LOCK_PATH] = 0o644
    actions = tuple((a.path, a.action) for a in plan.actions if a.changes_disk)
    return RemotePlan(
        repository, tree.sha, changes, tuple(plan.conflicts),
        sum(1 for a in plan.actions if not a.changes_disk), modes=modes, actions=actions,
        previous_templates=lock.templates if lock else None,
        previous_mlgen=lock.mlgen_version if lock else "", downloaded=tuple(reader.downloaded),
        **common)


def _default_branch(spec_text: str, source: str) -> str | None:
    from ...spec_loader import parse_spec

    try:
        return parse_spec(spec_text, source).ci.github.default_branch
    except MlgenError:
        return None


def _templates_line(t: TemplateSet | None) -> str:
    if t is None:
        return "none recorded"
    text = f"mlgen {t.version}" + (f" (`{t.hash.removeprefix('sha256:')[:12]}`)" if t.hash else "")
    return text + (f", overrides from {', '.join(f'`{o}`' for o in t.overrides)}"
                   if t.overrides else "")


def pr_body(plan: RemotePlan) -> str:
    from ...sync.plan import ACTIONS

    lines = [("mlgen re-rendered this repository's generated files from `mlgen.yaml` and merged "
              "them with the edits made here, as `mlgen sync` does locally (merge base: what "
              f"`{LOCK_PATH}` says mlgen generated last)."), "",
             f"- Generator: mlgen {__version__}",
             f"- Templates: {_templates_line(plan.templates)}"]
    lines += [f"- {note}" for note in plan.notes]
    if plan.previous_templates is not None:
        lines.append(f"- Last sync: mlgen {plan.previous_mlgen or '?'}, templates "
                     f"{_templates_line(plan.previous_templates)}")
    lines += ["", "| file | change |", "| --- | --- |"]
    for path, action in plan.actions:
        lines.append(f"| `{path}` | {action}: {ACTIONS.get(action, action)} |")
    rejects = [p for p in plan.changes if p.endswith(".rej")]
    lines += [f"| `{p}` | the hunks of the new render that did not apply |" for p in rejects]
    if LOCK_PATH in plan.changes:
        lines.append(f"| `{LOCK_PATH}` | what mlgen generated, for the next merge |")
    if plan.conflicts:
        how = ("the file keeps your version; apply the hunks in its `.rej` file by hand and "
               "delete the `.rej`" if plan.conflict_mode == "rej" else
               "edit out the `<<<<<<<` / `=======` / `>>>>>>>` markers")
        lines += ["", "### Conflicts to resolve", "",
                  ("Your edits and the new render overlap here. Check out this branch "
                   f"(`git fetch origin {_sync_branch()} && git checkout {_sync_branch()}`), "
                   f"resolve ({how}), commit and push, then merge:"), ""]
        lines += [f"- [ ] `{p}`" for p in plan.conflicts]
    return "\n".join(lines)


def _sync_branch() -> str:
    from ...integrations.github.client import SYNC_BRANCH

    return SYNC_BRANCH


def sync_pull_request(client: GitHubClient, repository: str, *, dry_run: bool = False,
                      render: Render | None = None, conflict: str = "inline",
                      restore: Collection[str] | bool = (),
                      extra_templates: Sequence[Path] = (), title: str = TITLE,
                      base_branch: str | None = None,
                      overrides: OverridePolicy = OverridePolicy()) -> dict[str, Any]:
    """`mlgen sync --pr` for one repository. Returns a JSON-able outcome."""
    from ...integrations.github.gitdata import open_or_update_sync_pr, pull_holding

    plan = plan_remote(client, repository, base_branch or "HEAD", render, conflict=conflict,
                       restore=restore, extra_templates=extra_templates, overrides=overrides)
    outcome: dict[str, Any] = {"repository": repository, "changed": sorted(plan.changes),
                               "conflicts": list(plan.conflicts),
                               "files": {p: a for p, a in plan.actions}}
    if plan.notes:
        outcome["notes"] = list(plan.notes)
    if plan.up_to_date:
        return {**outcome, "status": "up-to-date"}
    if dry_run:
        held = pull_holding(plan.snapshot, base_branch, plan.changes) if plan.snapshot else None
        if held is not None:  # what a real run would find: the open PR already has it all
            return {**outcome, "status": "unchanged", "pr": held.number, "url": held.url}
        return {**outcome, "status": "would-change"}
    result = open_or_update_sync_pr(client, repository, plan.changes, title, pr_body(plan),
                                    base_tree=plan.base_tree, base_branch=base_branch,
                                    modes=plan.modes, snapshot=plan.snapshot)
    return {**outcome, "status": result.action, "pr": result.pr_number, "url": result.pr_url,
            "commit": result.commit_sha}


def synced_files(spec_text: str, render: Render | None = None) -> dict[str, bytes]:
    """The generated files plus the lock a clean sync leaves, for seeding tests and benchmarks
    with repositories that are already up to date (render None: the real renderer)."""
    rendered = (render_spec(spec_text, SPEC_PATH, lambda path: None) if render is None
                else _adapt(render(spec_text), spec_text))
    return {**{a.path: encode_text(a.text, False) for a in rendered.artifacts},
            LOCK_PATH: _clean_lock(rendered)}
