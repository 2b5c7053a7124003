"""Templates render in Jinja's sandbox: an override is text to fill in, never a way to run code.

Each classic escape sits in a template override of a real project and tries to create a marker
file through `os`; the real `mlgen render` / `mlgen sync` processes must exit 2 with one line
naming the template, write nothing, and leave no marker behind.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import jinja2
import pytest
from mlgen.errors import EXIT_USAGE
from mlgen.render import _bytecode_cache, make_environment

from tests.helpers import SKETCH, run_mlgen, snapshot

MARKER = "{marker}"  # replaced by the test's marker path
RUN = f"popen('touch {MARKER}').read()"
# The catch_warnings class is always loaded, and its instances reach the builtins.
VIA_SUBCLASSES = ("{% for c in X.__mro__[1].__subclasses__() if c.__name__ == 'catch_warnings' %}"
                  "{{ c()._module.__builtins__['__import__']('os')." + RUN + " }}{% endfor %}")

ESCAPES = {
    "self-init-globals":
        "{{ self.__init__.__globals__.__builtins__.__import__('os')." + RUN + " }}",
    "str-subclasses": VIA_SUBCLASSES.replace("X", "''.__class__"),
    "cycler-globals": "{{ cycler.__init__.__globals__.os." + RUN + " }}",
    "lipsum-globals": "{{ lipsum.__globals__['os']." + RUN + " }}",
    "joiner-globals": "{{ joiner.__init__.__globals__.os." + RUN + " }}",
    "namespace-globals": "{{ namespace.__init__.__globals__.os." + RUN + " }}",
    "template-context":
        "{{ self._TemplateReference__context.cycler.__init__.__globals__.os." + RUN + " }}",
    "set-then-use": "{% set x = ''.__class__ %}" + VIA_SUBCLASSES.replace("X", "x"),
    "attr-filter": "{{ (lipsum | attr('__globals__'))['os']." + RUN + " }}",
    "format-string": "{{ '{0.__class__.__mro__[1].__subclasses__}'.format('') }}",
    "spec-object": "{{ spec.__class__.__init__.__globals__ }}",
}


def project(tmp_path: Path, template: str) -> tuple[Path, Path]:
    """A project whose override of docker/dockerignore.j2 is `template`; and the marker."""
    root = tmp_path / "proj"
    root.mkdir()
    marker = tmp_path / "pwned"
    shutil.copy(SKETCH, root / "mlgen.yaml")
    with (root / "mlgen.yaml").open("a", encoding="utf-8") as f:
        f.write("templates: ci/templates\n")
    override = root / "ci" / "templates" / "docker" / "dockerignore.j2"
    override.parent.mkdir(parents=True)
    override.write_text("# ignore\n" + template.replace(MARKER, str(marker)) + "\n",
                        encoding="utf-8")
    return root, marker


def cli_env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / "cache"), "TMPDIR": str(tmp_path)}


def assert_blocked(proc: object, tmp_path: Path, marker: Path,
                   where: str = "ci/templates/docker/dockerignore.j2:2") -> None:
    code, err = proc.returncode, proc.stderr  # type: ignore[attr-defined]
    assert not marker.exists(), "the template ran a command"
    assert code == EXIT_USAGE, (code, err)
    assert err.startswith(f"error: {where}: template blocked by the sandbox: "), err
    assert "sandbox that refuses Python internals" in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    assert not list(tmp_path.glob("mlgen-crash-*.log"))


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_render_refuses_every_escape(name: str, tmp_path: Path) -> None:
    root, marker = project(tmp_path, ESCAPES[name])
    before = snapshot(root)
    proc = run_mlgen("render", cwd=root, extra_env=cli_env(tmp_path))
    assert_blocked(proc, tmp_path, marker)
    assert snapshot(root) == before  # nothing written: not one generated file, no lock


@pytest.mark.parametrize("name", ["self-init-globals", "str-subclasses", "lipsum-globals"])
def test_sync_refuses_the_escape_and_writes_nothing(name: str, tmp_path: Path) -> None:
    root, marker = project(tmp_path, ESCAPES[name])
    before = snapshot(root)
    proc = run_mlgen("-C", str(root), "sync", extra_env=cli_env(tmp_path))
    assert_blocked(proc, tmp_path, marker,
                   where=os.path.normpath(root / "ci/templates/docker/dockerignore.j2") + ":2")
    assert snapshot(root) == before


@pytest.mark.parametrize("how", ["--templates", "MLGEN_TEMPLATES"])
def test_organisation_and_command_line_overrides_are_sandboxed_too(how: str,
                                                                   tmp_path: Path) -> None:
    root, marker = project(tmp_path, ESCAPES["cycler-globals"])
    (root / "mlgen.yaml").write_text(SKETCH.read_text(encoding="utf-8"), encoding="utf-8")
    org = tmp_path / "org-templates"
    shutil.move(root / "ci" / "templates", org)
    args, env = ["render"], cli_env(tmp_path)
    if how == "--templates":
        args += ["--templates", str(org)]
    else:
        env["MLGEN_TEMPLATES"] = str(org)
    proc = run_mlgen(*args, cwd=root, extra_env=env)
    assert_blocked(proc, tmp_path, marker, where=f"{org}/docker/dockerignore.j2:2")


def test_the_error_names_the_macro_file_and_line_that_did_it(tmp_path: Path) -> None:
    root, marker = project(tmp_path, '{% from "docker/_helpers.j2" import ignore %}'
                                     "{{ ignore() }}")
    (root / "ci/templates/docker/_helpers.j2").write_text(
        "{% macro ignore() -%}\n*.tmp\n{{ cycler.__init__.__globals__.os." +
        RUN.replace(MARKER, str(marker)) + " }}\n{%- endmacro %}\n", encoding="utf-8")
    proc = run_mlgen("render", "--dry-run", cwd=root, extra_env=cli_env(tmp_path))
    assert_blocked(proc, tmp_path, marker, where="ci/templates/docker/_helpers.j2:3")
    assert "'__init__'" in proc.stderr


def test_sandbox_limits_are_errors_too_and_plain_templates_still_work(tmp_path: Path) -> None:
    from mlgen.errors import TemplateSandboxError

    folder = tmp_path / "t"
    (folder / "x").mkdir(parents=True)
    env = make_environment([folder])
    assert isinstance(env, jinja2.sandbox.SandboxedEnvironment)
    (folder / "x/range.j2").write_text("{{ range(10 ** 7) | list | length }}")
    with pytest.raises(TemplateSandboxError, match="Range too big") as info:
        env.get_template("x/range.j2").render()
    assert info.value.exit_code == EXIT_USAGE and info.value.line == 1
    # what the built-in templates do (lists built with append, filters, loops) stays allowed
    (folder / "x/ok.j2").write_text("{% set lines = ['a'] %}{% set _ = lines.append('b') %}"
                                    "{{ lines | join(',') | sh_quote }} {{ mlgen_version }}")
    assert env.get_template("x/ok.j2").render().startswith("a,b ")


def test_sandboxed_environment_never_loads_bytecode_of_a_plain_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain environment compiles `x.__class__` to an unchecked attribute read; had the
    sandbox loaded that bytecode from the shared cache, the escape would render."""
    from mlgen.errors import TemplateSandboxError
    from mlgen.render import SandboxedTemplates

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLGEN_NO_CACHE", raising=False)
    folder = tmp_path / "t"
    (folder / "x").mkdir(parents=True)
    (folder / "x/t.j2").write_text("{{ ''.__class__.__name__ }}")
    sandboxed = make_environment([folder])
    plain = jinja2.Environment(loader=jinja2.FileSystemLoader([str(folder)]),
                               undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                               trim_blocks=True, lstrip_blocks=True)
    plain.bytecode_cache = _bytecode_cache(plain)
    assert plain.get_template("x/t.j2").render() == "str"  # compiled into the cache
    assert plain.bytecode_cache is not None and sandboxed.bytecode_cache is not None
    pattern = "pattern"  # FileSystemBytecodeCache keeps the file-name pattern here
    assert getattr(plain.bytecode_cache, pattern) != getattr(sandboxed.bytecode_cache, pattern)
    with pytest.raises(TemplateSandboxError, match="'__class__' of 'str'"):
        sandboxed.get_template("x/t.j2").render()
    assert type(sandboxed) is SandboxedTemplates
