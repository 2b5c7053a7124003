"""Several models in one repository: the root `mlgen.yaml` that lists their folders.

A root spec is told from a model's spec by its top-level `models:` key (a model spec has
`model:` and `name:` instead, and forbids unknown keys, so neither can be mistaken for the
other):

    apiVersion: mlgen/v1
    models: [models/credit-risk, models/fraud]     # folders, relative to this file
    # or: models: {discover: "models/*"}           # every folder matching that has mlgen.yaml

Each listed folder holds an ordinary model spec. The repository renders as the union of the
models' renders, each with `model_dir` set to its folder: files land under the folder, except
those GitHub reads only at the repository root (`.github/`), which the targets name by model.
One lock (`.mlgen/lock.json` at the root) records them all, so `sync`, `check`, `render` and
`sync --pr` treat the repository as one project and open one pull request.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mlgen.models.contract import SPEC_FILENAME

from .errors import SpecError, SpecIssue, UsageError

if TYPE_CHECKING:
    from .render import Artifact
    from .spec import Spec
    from .sync.lock import TemplateSet
    from .validate.runner import Layout

ROOT_KEYS = ("apiVersion", "models")
# GitHub runs workflows only from the repository root's .github/workflows: a model's files
# there keep their root path (the target names them by model) instead of moving under its folder.
ROOT_ONLY_PREFIXES = (".github/",)
_FOLDER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*(/[A-Za-z0-9_][A-Za-z0-9_.@+-]*)*$")
_MODELS_LINE = re.compile(r"^[\"']?models[\"']?\s*:", re.MULTILINE)
_GLOB_RE = re.compile(r"^[A-Za-z0-9_*?.@+/-]+$")


@dataclass(frozen=True)
class ModelEntry:
    """One model of a monorepo: its folder (POSIX, relative to the root) and its spec."""

    folder: str
    spec: Spec


@dataclass(frozen=True)
class Monorepo:
    """A repository whose root mlgen.yaml lists model folders."""

    root: Path
    models: tuple[ModelEntry, ...] = field(default=())

    @property
    def folders(self) -> tuple[str, ...]:
        return tuple(m.folder for m in self.models)

    def model_for(self, path: str) -> ModelEntry | None:
        """The model a rendered path belongs to (by folder, a root workflow by name, or a
        root-level Azure pipeline file by its spec's ci.azure.path)."""
        for entry in self.models:
            if path.startswith(entry.folder + "/") or root_file_owner(path) == entry.spec.name \
                    or path == place(entry.folder, entry.spec.ci.azure.path):
                return entry
        return None


def root_file_owner(path: str) -> str | None:
    """The model name a root-only file (`.github/workflows/<model>-ci.yml`) is named after."""
    if not path.startswith(ROOT_ONLY_PREFIXES):
        return None
    stem = PurePosixPath(path).name
    for suffix in ("-ci.yml", "-cd.yml", "-drift.yml", "-monitor.yml"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return None


def read_mapping(path: Path) -> tuple[dict[str, Any], dict[Any, tuple[int, int]]] | None:
    """The spec file's top-level mapping and marks, or None when there is no such file."""
    from .spec_loader import read_yaml_with_marks

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecIssue(str(path), "", 0, 0, f"cannot read the file: {exc}")]) from None
    data, marks = read_yaml_with_marks(text, str(path))
    if not isinstance(data, dict):
        return None
    return data, marks


def is_root_spec_text(text: str) -> bool:
    """Whether a spec's text is a root spec (a top-level `models:` key)."""
    from .spec_loader import read_yaml_with_marks

    if not _MODELS_LINE.search(text):
        return False
    try:
        data, _ = read_yaml_with_marks(text, SPEC_FILENAME)
    except SpecError:
        return False
    return isinstance(data, dict) and "models" in data


def is_monorepo(root: Path) -> bool:
    """Whether `root/mlgen.yaml` is a root spec (has a top-level `models:` key)."""
    path = root / SPEC_FILENAME
    try:
        # Cheap first: most specs are a model's, and a root spec starts a line with `models:`.
        if not _MODELS_LINE.search(path.read_text(encoding="utf-8")):
            return False
    except (OSError, UnicodeDecodeError):
        return False
    try:
        found = read_mapping(path)
    except SpecError:
        return False  # a broken file is reported by whoever loads it as a model spec
    return found is not None and "models" in found[0]


def load_monorepo(root: Path) -> Monorepo:
    """Read and check the root spec, then every model's spec. SpecError (exit 2) names the
    file, the key and the line of the first problems."""
    path = root / SPEC_FILENAME
    display = str(path)
    found = read_mapping(path)
    if found is None:
        raise SpecError([SpecIssue(display, "", 1, 1, "the top level must be a mapping of keys")])
    data, marks = found
    folders = model_folders(root, data, marks, display)
    from .spec_loader import load_spec

    entries = tuple(ModelEntry(folder, load_spec(root / folder / SPEC_FILENAME))
                    for folder in folders)
    names: dict[str, str] = {}
    for index, entry in enumerate(entries):
        if entry.spec.name in names:
            line, col = _mark(marks, ("models", index))
            raise SpecError([SpecIssue(display, f"models[{index}]", line, col,
                                       f"{entry.folder}/{SPEC_FILENAME} has name "
                                       f"'{entry.spec.name}', as {names[entry.spec.name]} does: "
                                       "model names name images, jobs and workflows, so they "
                                       "must differ")])
        names[entry.spec.name] = f"{entry.folder}/{SPEC_FILENAME}"
    return Monorepo(root, entries)


def model_folders(root: Path, data: Mapping[str, Any], marks: Mapping[Any, tuple[int, int]],
                  display: str) -> list[str]:
    """The model folders the root spec names, checked: relative, inside the repository, no
    '..', no duplicates, each with its own mlgen.yaml."""
    issues: list[SpecIssue] = []

    def issue(loc: tuple[Any, ...], message: str, key: bool = False) -> None:
        line, col = _mark(marks, loc + (("<key>",) if key else ()))
        issues.append(SpecIssue(display, _dotted(loc), line, col, message))

    for key in data:
        if key not in ROOT_KEYS:
            issue((key,), f"unknown key '{key}' in a root spec; allowed keys: "
                  f"{', '.join(ROOT_KEYS)} (a model's own keys go in its folder's "
                  f"{SPEC_FILENAME})", key=True)
    if data.get("apiVersion") != "mlgen/v1":
        issue(("apiVersion",), f"must be 'mlgen/v1'; got {data.get('apiVersion')!r}")
    models = data.get("models")
    folders: list[str] = []
    if isinstance(models, dict):
        extra = [k for k in models if k != "discover"]
        for key in extra:
            issue(("models", key), f"unknown key '{key}'; models takes a list of folders or "
                  "{discover: GLOB}", key=True)
        pattern = models.get("discover")
        if not isinstance(pattern, str) or not _GLOB_RE.match(pattern) \
                or pattern.startswith("/") or ".." in pattern.split("/"):
            issue(("models", "discover"), "must be a relative glob such as 'models/*' (no '/' "
                  "at the start, no '..')")
        elif not issues:
            folders = sorted(p.parent.relative_to(root).as_posix()
                             for p in root.glob(f"{pattern}/{SPEC_FILENAME}")
                             if p.parent.resolve() != root.resolve())
            if not folders:
                issue(("models", "discover"), f"no folder matching {pattern!r} has a "
                      f"{SPEC_FILENAME}")
            # Found folders reach CI files (path filters, working directories, `cd` lines):
            # they are held to the same names as listed ones.
            for found in folders:
                if not _FOLDER_RE.match(found):
                    issue(("models", "discover"), f"found folder {found!r}: a model's folder "
                          "may hold only letters, digits and '_.@+-' (no spaces or shell "
                          "characters)")
    elif isinstance(models, list):
        seen: dict[str, int] = {}
        for index, item in enumerate(models):
            loc = ("models", index)
            text = item.rstrip("/") if isinstance(item, str) else ""
            if not text or not _FOLDER_RE.match(text) or ".." in text.split("/") \
                    or "." in text.split("/"):
                issue(loc, f"{item!r} must be a folder relative to the repository root (no "
                      "leading '/', no '.' or '..', no spaces or shell characters)")
            elif text in seen:
                issue(loc, f"'{text}' is listed twice (also at models[{seen[text]}])")
            elif not (root / text / SPEC_FILENAME).is_file():
                issue(loc, f"'{text}' has no {SPEC_FILENAME}; create one with "
                      f"`mlgen init {text}`")
            else:
                nested = [f for f in seen if text.startswith(f + "/") or f.startswith(text + "/")]
                if nested:
                    issue(loc, f"'{text}' and '{nested[0]}' are nested: a model's folder may "
                          "not hold another model")
                seen[text] = index
                folders.append(text)
        if not models:
            issue(("models",), "lists no model folder")
    else:
        issue(("models",), "must be a list of model folders or {discover: GLOB}")
    if issues:
        raise SpecError(sorted(issues, key=lambda i: (i.line, i.column, i.path)))
    return folders


def _mark(marks: Mapping[Any, tuple[int, int]], loc: tuple[Any, ...]) -> tuple[int, int]:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in marks:
            return marks[loc[:cut]]
    return (1, 1)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


# ---- rendering ------------------------------------------------------------------------------

def place(folder: str, path: str) -> str:
    """Where a model's rendered file goes in the repository."""
    return path if path.startswith(ROOT_ONLY_PREFIXES) else f"{folder}/{path}"


def render_monorepo(mono: Monorepo, only: Iterable[str] = (),
                    extra_templates: Iterable[Path] = (),
                    used_templates: dict[str, dict[str, str]] | None = None) -> list[Artifact]:
    """Every model's files, placed in the repository, sorted by path.

    `used_templates`, when given, gets folder -> (template name -> file) for each model.
    """
    from dataclasses import replace

    from .project import render_artifacts

    out: dict[str, Artifact] = {}
    for entry in mono.models:
        used: dict[str, str] = {}
        model_root = mono.root / entry.folder
        for artifact in render_artifacts(entry.spec, model_root, only, extra_templates,
                                         used_templates=used, model_dir=entry.folder):
            path = place(entry.folder, artifact.path)
            if path in out:
                raise UsageError(f"two models write {path}; give them different names")
            out[path] = replace(artifact, path=path)
        if used_templates is not None:
            used_templates[entry.folder] = used
    return [out[p] for p in sorted(out)]


def monorepo_template_set(mono: Monorepo, used: Mapping[str, Mapping[str, str]]) -> TemplateSet:
    """One template set for the lock: the models' sets hashed together, overrides merged."""
    from .render import BUILTIN_TEMPLATES
    from .sync.lock import TemplateSet, template_set

    digest = hashlib.sha256()
    overrides: set[str] = set()
    for folder in sorted(used):
        one = template_set(used[folder], BUILTIN_TEMPLATES, mono.root)
        digest.update(folder.encode() + b"\0" + one.hash.encode() + b"\n")
        overrides.update(one.overrides)
    return TemplateSet(hash="sha256:" + digest.hexdigest(), overrides=tuple(sorted(overrides)))


def monorepo_spec_sha(mono: Monorepo) -> str:
    """A hash of the root spec and every model's spec (a change to any is a spec change)."""
    from .sync.lock import spec_sha

    digest = hashlib.sha256(spec_sha(mono.root).encode())
    for folder in mono.folders:
        digest.update(b"\0" + folder.encode() + b"\0" + spec_sha(mono.root / folder).encode())
    return digest.hexdigest()


def repository_root(folder: Path) -> Path:
    """The folder sync, check, render and validate act on: the monorepo root when `folder` is
    one of its models (so a model's CI can run `mlgen check` in its own folder), else itself."""
    return monorepo_of(folder) or folder if (folder / SPEC_FILENAME).is_file() else folder


def monorepo_of(model_root: Path) -> Path | None:
    """The monorepo root above `model_root` that lists it, or None (walks up to a .git).

    A broken root spec above is a SpecError: acting on the model alone would read a lock
    that is not there and report every file as new."""
    here = model_root.resolve()
    for parent in here.parents:
        if is_monorepo(parent):
            listed = load_monorepo_folders(parent)
            if here.relative_to(parent.resolve()).as_posix() in listed:
                return parent
        if (parent / ".git").exists():
            return None
    return None


def enclosing_monorepo(folder: Path) -> Path | None:
    """The nearest monorepo root above `folder` (listed or not), up to the git root."""
    for parent in folder.resolve().parents:
        if is_monorepo(parent):
            return parent
        if (parent / ".git").exists():
            return None
    return None


def load_monorepo_folders(root: Path) -> list[str]:
    found = read_mapping(root / SPEC_FILENAME)
    if found is None:
        return []
    return model_folders(root, found[0], found[1], str(root / SPEC_FILENAME))



def validation_jobs(root: Path, asked: Path) -> list[tuple[list[Artifact], Layout]]:
    """Per model (only the one `asked` names when it is a model folder): its placed files and
    where its targets write, for `mlgen validate`."""
    from .validate.runner import Layout

    mono = load_monorepo(root)
    artifacts = render_monorepo(mono)
    wanted = [m for m in mono.models if (root / m.folder).resolve() == asked.resolve()] \
        or list(mono.models)
    jobs = []
    for entry in wanted:
        out = entry.spec.outputs
        mine = [a for a in artifacts if mono.model_for(a.path) is entry]
        jobs.append((mine, Layout(jenkinsfile=place(entry.folder, out.jenkinsfile),
                                  workflows=place(entry.folder, out.workflows),
                                  dockerfile=place(entry.folder, out.dockerfile),
                                  kubernetes=place(entry.folder, out.kubernetes),
                                  azure_pipelines=place(entry.folder, entry.spec.ci.azure.path))))
    return jobs
