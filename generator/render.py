"""The one Jinja environment mlgen renders with, and every filter templates may use.

Each filter quotes a spec value for one target language so that any text a user writes
comes back literally and can never add a key, a stage or a shell command. Templates must
pass every free-text value through the filter of the language it lands in.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

import jinja2
import jinja2.sandbox

from . import DISTRIBUTION, __version__, requirement
from .errors import TemplateSandboxError

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
try:  # installed layout: templates ship inside the package as mlgen/templates
    from . import templates as _installed_templates  # type: ignore[attr-defined]

    BUILTIN_TEMPLATES = Path(_installed_templates.__file__).parent
except ImportError:  # source checkout without install: generator/../templates
    pass


@dataclass(frozen=True)
class Artifact:
    """One file mlgen produces. `path` is relative to the repository root, POSIX style."""

    path: str
    text: str
    mode: int = 0o644
    target: str = ""  # the target that rendered it; "scaffold" for `mlgen init`'s files


class SandboxedTemplates(jinja2.sandbox.SandboxedEnvironment):
    """Every mlgen template renders here: override folders come from repositories that the bot
    and fleet sync act on with an organisation's token, so a template must be unable to reach
    Python internals (`''.__class__`, `cycler.__init__.__globals__`, ...).

    Not the ImmutableSandboxedEnvironment: the built-in Kubernetes macros build their lines
    with `lines.append(...)`, and overrides copied from them do too. Mutating a list the
    template made itself runs no code, so the plain sandbox is enough.
    """

    def handle_exception(self, source: str | None = None) -> NoReturn:
        # Jinja calls this from Template.render with the error raised inside the template;
        # the traceback it rewrites points at template lines, which the message names.
        try:
            super().handle_exception(source)
        except jinja2.exceptions.SecurityError as exc:
            raise _sandbox_error(exc) from None
        except OverflowError as exc:
            if "sandbox" not in str(exc):  # only the sandbox's own range() limit is ours
                raise
            raise _sandbox_error(exc) from None


def _sandbox_error(exc: BaseException) -> TemplateSandboxError:
    """The error naming the innermost template line the traceback went through."""
    file, line = "template", 0
    tb = exc.__traceback__
    while tb is not None:
        # Jinja rewrites template frames into frames whose globals hold the exception.
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            file, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    return TemplateSandboxError(os.path.normpath(file) if file != "template" else file, line,
                                str(exc))


def make_environment(overrides: Iterable[Path] = ()) -> jinja2.Environment:
    """Templates from override folders (first wins) layered over the built-in ones, rendered
    in the sandbox (see SandboxedTemplates)."""
    search = [str(p) for p in overrides] + [str(BUILTIN_TEMPLATES)]
    env = SandboxedTemplates(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.bytecode_cache = _bytecode_cache(env)
    env.filters.update(FILTERS)
    env.globals["mlgen_version"] = __version__
    env.globals["mlgen_distribution"] = DISTRIBUTION
    env.globals["mlgen_requirement"] = requirement
    env.globals["model_dir"] = ""  # a monorepo model's folder (mlgen.project.render_artifacts)
    return env


class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """A cache that can only make rendering faster: a full disk or a read-only cache is ignored."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache(env: jinja2.Environment) -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (compiling is most of a cold render's Jinja time).

    Jinja checks each entry against the template's source, so edited templates and overrides
    recompile; the file names carry a fingerprint of the options that change the compiled code,
    so a changed environment never reads old bytecode. Entries are unpickled, so the folder must
    be the user's own and closed to others; otherwise (or with MLGEN_NO_CACHE=1) no cache.
    """
    if os.environ.get("MLGEN_NO_CACHE") or not hasattr(os, "getuid"):
        return None
    from .userdirs import user_cache_dir

    folder = str(user_cache_dir() / "jinja")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    # The environment's class is part of it: a sandboxed environment compiles attribute
    # access and calls into checked ones, and must never load code compiled without them.
    kind = (f"{type(env).__module__}.{type(env).__qualname__}", env.sandboxed,
            sorted(getattr(env, "intercepted_binops", ())),
            sorted(getattr(env, "intercepted_unops", ())))
    options = (kind, jinja2.__version__, env.block_start_string, env.block_end_string,
               env.variable_start_string, env.variable_end_string, env.comment_start_string,
               env.comment_end_string, env.line_statement_prefix, env.line_comment_prefix,
               env.trim_blocks, env.lstrip_blocks, env.newline_sequence,
               env.keep_trailing_newline, env.optimized, repr(env.autoescape),
               sorted(env.extensions))
    fingerprint = hashlib.sha256(repr(options).encode()).hexdigest()[:12]
    return _QuietBytecodeCache(folder, f"{fingerprint}-%s.cache")


# ---- filters: one per target language -------------------------------------------------------

_YAML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\x00": "\\0"}


def yaml_str(value: Any) -> str:
    """A YAML double-quoted scalar that reads back as exactly `value` (as a string).

    Non-printable characters, and the Unicode line separators YAML 1.1 treats as breaks, are
    escaped; everything else stays as written so that diffs remain readable.
    """
    out = ['"']
    for ch in str(value):
        code = ord(ch)
        if ch in _YAML_ESCAPES:
            out.append(_YAML_ESCAPES[ch])
        elif code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF) \
                or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def groovy_str(value: Any) -> str:
    """A Groovy single-quoted string literal: no `$` interpolation happens inside it."""
    out = ["'"]
    for ch in str(value):
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append("'")
    return "".join(out)


def sh_quote(value: Any) -> str:
    """One POSIX shell word."""
    return shlex.quote(str(value))


def xml_text(value: Any) -> str:
    """Text for an XML element or attribute; characters XML 1.0 cannot carry are dropped."""
    text = "".join(ch for ch in str(value) if _xml_allowed(ord(ch)))
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def _xml_allowed(code: int) -> bool:
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD \
        or 0x10000 <= code <= 0x10FFFF


def json_str(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def comment_line(value: Any) -> str:
    """Text safe inside a one-line comment of any target: line breaks become spaces."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+", " ", str(value))


def slugify(value: Any, *, keep: str, edges: str, fallback: str) -> str:
    """Free text as at most 63 characters of `keep` (a regex class body), runs of anything
    else becoming '-', without `edges` characters at either end: Kubernetes names and labels."""
    slug = re.sub(f"[^{keep}]+", "-", str(value)).strip(edges)[:63].strip(edges)
    return slug or fallback


def label_value(value: Any) -> str:
    """A Kubernetes label value derived from free text (the exact text goes in an annotation)."""
    return slugify(value, keep="A-Za-z0-9_.-", edges="-_.", fallback="unknown")


def md_text(value: Any) -> str:
    """Free text shown in Markdown without becoming markup or HTML."""
    text = comment_line(value)
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~-])", r"\\\1", text)


FILTERS = {
    "yaml_str": yaml_str,
    "groovy_str": groovy_str,
    "sh_quote": sh_quote,
    "xml_text": xml_text,
    "json_str": json_str,
    "comment_line": comment_line,
    "label_value": label_value,
    "md_text": md_text,
}


# ---- the generated-file header --------------------------------------------------------------

HEADER_LINES = (
    "Generated by mlgen {version} from mlgen.yaml.",
    "To change it, edit mlgen.yaml (or a template override) and run `mlgen sync`;",
    "hand edits here are kept by `mlgen sync` and reported by `mlgen check`.",
)


def header_for(path: str) -> str:
    """The 'generated by mlgen' header in the comment syntax of the file at `path`."""
    lines = [line.format(version=__version__) for line in HEADER_LINES]
    name = PurePosixPath(path).name
    if name in ("Jenkinsfile", "Jenkinsfile.monitor") or name.endswith((".groovy", ".gvy")):
        return "".join(f"// {line}\n" for line in lines)
    if name.endswith((".md", ".html", ".xml")):
        return "<!-- " + " ".join(lines).replace("--", "- -") + " -->\n"
    if name.endswith(".json"):
        return ""  # JSON has no comments; the lock file records that mlgen made it
    return "".join(f"# {line}\n" for line in lines)


def with_header(path: str, body: str) -> str:
    header = header_for(path)
    if body.startswith("#!"):  # keep a shebang first
        first, _, rest = body.partition("\n")
        return f"{first}\n{header}{rest}"
    return header + body
