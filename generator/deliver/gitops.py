"""`mlgen gitops pin`: write a pushed image digest into an environment's overlay, for Argo CD.

In GitOps mode nothing applies to the cluster from CI: the pipeline commits the digest into
`k8s/overlays/ENV/kustomization.yaml` (the `digest:` of the model image's `images:` entry) and
Argo CD syncs the commit. The edit is a ruamel.yaml round-trip, so comments, quoting and any
hand edits in the file stay as they are, and the lock records it as mlgen's own write: `mlgen
check` stays green and `mlgen sync` keeps the digest (a three-way merge: the rendered overlay
leaves a comment line between `newTag` and the digest, so a changed tag merges cleanly).

The committing and pushing (git via subprocess) live in `gitrepo.py`.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..sync.lock import LOCK_PATH, decode_text, encode_text, read_lock, sha256_text
from ..sync.writer import FileWrite, write_files
from ..textdiff import unified_diff
from .target import DIGEST_RE


@dataclass(frozen=True)
class ImageRef:
    """The image to pin: a repository (None: the spec's image) and its digest."""

    digest: str
    repository: str | None = None


@dataclass(frozen=True)
class PinPlan:
    environment: str
    path: str  # the overlay's kustomization.yaml, relative to the project
    image: str  # the images: entry's name (the spec's image)
    digest: str
    previous_digest: str | None
    old_text: str
    new_text: str
    writes: tuple[FileWrite, ...]  # the overlay (and the lock when it records the file)

    @property
    def changed(self) -> bool:
        return self.old_text != self.new_text

    def diff(self) -> str:
        return unified_diff(self.path, self.old_text, self.new_text)

    def commit_message(self) -> str:
        return (f"mlgen gitops: pin {self.environment} to {self.digest[:19]}\n\n"
                f"Argo CD syncs {self.path} with {self.image}@{self.digest}.\n\n"
                f"Mlgen-Gitops-Pin: {self.environment}\n")

    def as_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "path": self.path, "image": self.image,
                "digest": self.digest, "previous_digest": self.previous_digest,
                "changed": self.changed}


def parse_image(value: str, option: str = "--digest") -> ImageRef:
    """`sha256:<hex>` or `repository@sha256:<hex>` (a tag before the @ is dropped)."""
    repository, at, digest = value.rpartition("@")
    if not at:
        repository, digest = "", value
    if not DIGEST_RE.match(digest):
        raise UsageError(f"{option} {value!r}: the digest must be sha256: followed by 64 "
                         "lowercase hex digits (what `mlgen push` prints)")
    if at:
        last = repository.rsplit("/", 1)[-1]
        if ":" in last:  # repo:tag@digest: the digest is what counts
            repository = repository[: len(repository) - len(last)] + last.split(":", 1)[0]
        if not repository or not re.match(r"^[a-z0-9][a-z0-9._:/-]*$", repository):
            raise UsageError(f"{option} {value!r}: {repository!r} is not an image repository")
    return ImageRef(digest=digest, repository=repository or None)


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line (a JSON patch value, say)
    yaml.indent(mapping=2, sequence=4, offset=2)  # how every mlgen template indents
    return yaml


def pin_text(text: str, image: str, ref: ImageRef, source: str) -> tuple[str, str | None]:
    """`text` with the `images:` entry named `image` pinned to `ref`; also the digest it had."""
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString as Quoted

    yaml = _yaml()
    try:
        doc = yaml.load(text)
    except YAMLError as exc:
        raise UsageError(f"{source}: invalid YAML: {exc}") from None
    images = doc.get("images") if isinstance(doc, dict) else None
    entry: Any = next((e for e in images or () if isinstance(e, dict) and e.get("name") == image),
                      None)
    if entry is None:
        raise UsageError(f"{source}: images: has no entry named {image!r} (the spec's image); "
                         "run `mlgen sync` to bring the overlay back")
    previous = entry.get("digest")
    keys = list(entry)
    if "digest" not in entry:
        # Right after newTag, below the comment the render leaves there for it.
        at = keys.index("newTag") + 1 if "newTag" in keys else len(keys)
        entry.insert(at, "digest", Quoted(ref.digest))
    else:
        entry["digest"] = Quoted(ref.digest)
    if ref.repository and ref.repository != image and entry.get("newName") != ref.repository:
        if "newName" in entry:
            entry["newName"] = Quoted(ref.repository)
        else:
            entry.insert(1, "newName", Quoted(ref.repository))
    elif ref.repository == image and "newName" in entry:
        del entry["newName"]  # back to the spec's own repository
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue(), str(previous) if previous is not None else None


def plan_pin(project: Path, environment: str, ref: ImageRef) -> PinPlan:
    from ..project import load_project

    spec = load_project(project)
    environments = spec.kubernetes.environments
    if environment not in environments:
        raise UsageError(f"unknown environment {environment!r}; mlgen.yaml "
                         f"kubernetes.environments lists: {', '.join(environments)}")
    if not spec.kubernetes.gitops.enabled:
        raise UsageError("mlgen.yaml kubernetes.gitops.enabled is false: pin writes the digest "
                         "for Argo CD to sync; without GitOps use `mlgen deploy`")
    rel = f"{spec.outputs.kubernetes}/overlays/{environment}/kustomization.yaml"
    path = project / rel
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist; run `mlgen render`") from None
    old, crlf = decode_text(raw)
    new, previous = pin_text(old, spec.image_name, ref, str(path))
    # In a monorepo the lock is the root's and names the overlay from there: the writes are
    # relative to the repository root (`lock_root`), whatever folder the pin ran in.
    root = lock_root(project)
    where = project.resolve().relative_to(root.resolve()).as_posix()
    at_root = rel if where == "." else f"{where}/{rel}"
    writes = [FileWrite(at_root, encode_text(new, crlf), path.stat().st_mode & 0o777)]
    lock = read_lock(root)
    entry = lock.entry(at_root) if lock else None
    # Record the pin as mlgen's write only when the file was as mlgen last left it: an edit
    # made outside sync stays visible to `mlgen check`.
    if lock is not None and entry is not None and entry.written == sha256_text(old) \
            and new != old:
        recorded = lock.with_files({**lock.files,
                                    at_root: replace(entry, written=sha256_text(new))})
        writes.append(FileWrite(LOCK_PATH, recorded.to_json()))
    return PinPlan(environment=environment, path=rel, image=spec.image_name, digest=ref.digest,
                   previous_digest=previous, old_text=old, new_text=new, writes=tuple(writes))


def lock_root(project: Path) -> Path:
    """Where the pin's writes are relative to: the monorepo root for one of its models."""
    from ..monorepo import repository_root

    return repository_root(project)


def apply_pin(project: Path, plan: PinPlan) -> None:
    if plan.changed:
        write_files(lock_root(project), list(plan.writes))
