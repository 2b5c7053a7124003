"""The lock file, `.mlgen/lock.json`: what mlgen generated last, so later syncs can merge.

It records the mlgen version, the template set (version, and a hash of the template files the
render actually loaded, overrides included), a hash of `mlgen.yaml`, and per generated file:

- `sha256`/`mode`: the text and mode mlgen generated last (the three-way merge base);
- `base`: that text itself, zlib-compressed and base64-encoded, so a merge works offline and
  without the old mlgen or old templates installed (JSON keeps it in the one file that is
  committed anyway; tools that scan the tree never mistake it for a second Dockerfile);
- `written`/`writtenMode`: what mlgen last left on disk (after a merge that is the user's
  merged text). `mlgen check` compares the disk with it to spot edits made outside sync;
- `optedOut`: the user deleted the generated file; sync keeps it deleted;
- `conflict`: the last sync left conflict markers or a `.rej` file here.

All hashes are of text with LF line endings, so a checkout that turns LF into CRLF is not an
edit. The value types are frozen; `Lock.to_json()`/`Lock.from_json()` are the only codec.
"""
from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2
from mlgen.models.contract import SPEC_FILENAME, STATE_DIR

from .. import __version__
from ..errors import MlgenError, UsageError

LOCK_PATH = f"{STATE_DIR}/lock.json"
LOCK_FORMAT = 1


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode_text(data: bytes) -> tuple[str, bool]:
    """File bytes -> (text with LF line endings, whether the file used CRLF)."""
    text = data.decode("utf-8", errors="surrogateescape")
    crlf = text.count("\r\n")
    return (text.replace("\r\n", "\n"), crlf > 0 and crlf >= text.count("\n") - crlf)


def encode_text(text: str, crlf: bool) -> bytes:
    if crlf:
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return text.encode("utf-8", errors="surrogateescape")


@dataclass(frozen=True)
class TemplateSet:
    """Which templates produced the files: mlgen's own version plus any override folders."""

    version: str = __version__
    hash: str = ""
    overrides: tuple[str, ...] = ()  # override folders that supplied a used template


@dataclass(frozen=True)
class LockEntry:
    path: str
    sha256: str = ""  # of the last generated text (the merge base)
    mode: int = 0o644  # mode mlgen generated
    base: str | None = None  # the last generated text; None when opted out
    written: str = ""  # sha256 of what mlgen last left on disk (LF-normalised)
    written_mode: int = 0o644
    target: str = ""
    opted_out: bool = False
    conflict: bool = False


@dataclass(frozen=True)
class Lock:
    mlgen_version: str = __version__
    templates: TemplateSet = TemplateSet()
    spec_sha256: str = ""
    files: Mapping[str, LockEntry] = field(default_factory=dict)  # never mutated after build

    def entry(self, path: str) -> LockEntry | None:
        return self.files.get(path)

    def with_files(self, files: Mapping[str, LockEntry]) -> Lock:
        return replace(self, files=dict(sorted(files.items())))

    def to_json(self) -> bytes:
        files: dict[str, Any] = {}
        for path, e in sorted(self.files.items()):
            if e.opted_out:
                files[path] = {"optedOut": True, "target": e.target}
                continue
            files[path] = {
                "sha256": e.sha256, "mode": f"{e.mode:04o}",
                "written": e.written, "writtenMode": f"{e.written_mode:04o}",
                "target": e.target, **({"conflict": True} if e.conflict else {}),
                "base": _pack(e.base or ""),
            }
        doc = {
            "lockFormat": LOCK_FORMAT,
            "mlgen": self.mlgen_version,
            "templates": {"version": self.templates.version, "hash": self.templates.hash,
                          "overrides": list(self.templates.overrides)},
            "spec": {"path": SPEC_FILENAME, "sha256": self.spec_sha256},
            "files": files,
        }
        return (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, source: str = LOCK_PATH) -> Lock:
        try:
            doc = json.loads(data.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError too; a merge conflict in the lock, say
            raise LockDamagedError(source, f"it is not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise LockDamagedError(source, f"it is JSON but a {type(doc).__name__}, not an object")
        if "lockFormat" not in doc:
            raise LockDamagedError(source, "it has no lockFormat")
        version = doc["lockFormat"]
        if isinstance(version, int) and not isinstance(version, bool) and version > LOCK_FORMAT:
            # Only this means "upgrade": a real, newer format written by a newer mlgen.
            raise MlgenError(f"{source}: lockFormat {version} was written by a newer mlgen "
                             f"(this one, {__version__}, reads lockFormat {LOCK_FORMAT}); "
                             "upgrade mlgen")
        if version != LOCK_FORMAT:
            raise LockDamagedError(source, f"lockFormat {version!r} is not a format mlgen writes "
                                           f"(this mlgen writes {LOCK_FORMAT})")
        try:
            files = {}
            for path, raw in doc["files"].items():
                if raw.get("optedOut"):
                    files[path] = LockEntry(path, target=raw.get("target", ""), opted_out=True)
                    continue
                base = _unpack(raw["base"])
                if sha256_text(base) != raw["sha256"]:
                    raise ValueError(f"files.{path}.base does not match its sha256")
                files[path] = LockEntry(
                    path, raw["sha256"], int(raw["mode"], 8), base, raw["written"],
                    int(raw["writtenMode"], 8), raw.get("target", ""), False,
                    bool(raw.get("conflict", False)))
            tpl = doc.get("templates", {})
            return cls(doc.get("mlgen", ""),
                       TemplateSet(tpl.get("version", ""), tpl.get("hash", ""),
                                   tuple(tpl.get("overrides", ()))),
                       doc.get("spec", {}).get("sha256", ""), files)
        except KeyError as exc:
            raise LockDamagedError(source, f"a required key is missing ({exc})") from None
        except (ValueError, TypeError, AttributeError, zlib.error) as exc:
            raise LockDamagedError(source, str(exc) or type(exc).__name__) from None


class LockDamagedError(UsageError):
    """The lock file cannot be read (exit 2): say what is wrong with it and how to recover."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(
            f"{source}: the lock file is damaged: {problem}. Restore it from git "
            f"(`git checkout -- {LOCK_PATH}`), or rebuild it from the files as they are now "
            "with `mlgen sync --rebuild-lock` (files that differ from the render are kept and "
            "recorded as your edits, which `mlgen check` then lists)")


def _pack(text: str) -> str:
    return "zlib:" + base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")


def _unpack(value: str) -> str:
    if not value.startswith("zlib:"):
        raise ValueError("a 'base' is not 'zlib:<base64>'")
    return zlib.decompress(base64.b64decode(value[5:], validate=True)).decode("utf-8")


def read_lock(root: Path) -> Lock | None:
    """The project's lock, or None when it has none yet. A write of mlgen's that was killed
    half way is finished first, so what is read is one consistent state."""
    from .writer import finish_interrupted

    finish_interrupted(root)
    path = root / LOCK_PATH
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return Lock.from_json(data, str(path))


# ---- fingerprints -----------------------------------------------------------------------------


class RecordingLoader(jinja2.BaseLoader):
    """Wraps the environment's loader and notes each template name -> file it loads."""

    def __init__(self, inner: jinja2.BaseLoader | None, seen: dict[str, str]) -> None:
        if inner is None:
            raise TypeError("RecordingLoader needs the environment's loader")
        self.inner = inner
        self.seen = seen

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        self.seen[template] = filename or template
        return source, filename, uptodate

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()


def template_set(used: Mapping[str, str], builtin: Path, root: Path) -> TemplateSet:
    """Hash the templates a render used, by name and content (so moving a folder is no change)."""
    digest = hashlib.sha256()
    overrides: set[str] = set()
    builtin = builtin.resolve()
    for name in sorted(used):
        filename = Path(used[name])
        digest.update(name.encode() + b"\0" + hashlib.sha256(filename.read_bytes()).digest())
        folder = _template_root(filename, name)
        if folder != builtin:
            try:
                overrides.add(folder.relative_to(root.resolve()).as_posix())
            except ValueError:
                overrides.add(folder.name)
    return TemplateSet(__version__, "sha256:" + digest.hexdigest(), tuple(sorted(overrides)))


def _template_root(filename: Path, name: str) -> Path:
    """The folder on the search path that `filename` (loaded as template `name`) came from."""
    folder = filename.resolve()
    for _ in [part for part in name.split("/") if part]:
        folder = folder.parent
    return folder


def spec_sha(root: Path) -> str:
    try:
        data = (root / SPEC_FILENAME).read_bytes()
    except FileNotFoundError:
        return ""
    return sha256_text(decode_text(data)[0])
