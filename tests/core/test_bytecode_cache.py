"""The Jinja bytecode cache may only make rendering faster, never change what is rendered."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlgen.project import render_artifacts
from mlgen.render import make_environment
from mlgen.spec_loader import load_spec

from tests.helpers import SKETCH


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv("MLGEN_NO_CACHE", raising=False)
    return home


def test_cached_render_equals_uncached_render(cache_home: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(SKETCH)
    first = render_artifacts(spec, tmp_path)  # compiles and fills the cache
    folder = cache_home / "mlgen" / "jinja"
    entries = sorted(folder.iterdir())
    assert entries, "the render stored no bytecode"
    assert os.stat(folder).st_mode & 0o777 == 0o700
    second = render_artifacts(spec, tmp_path)  # reads the cache
    assert sorted(folder.iterdir()) == entries
    monkeypatch.setenv("MLGEN_NO_CACHE", "1")
    uncached = render_artifacts(spec, tmp_path)
    assert first == second == uncached


def test_an_edited_template_is_recompiled(cache_home: Path, tmp_path: Path) -> None:
    overrides = tmp_path / "overrides" / "docker"
    overrides.mkdir(parents=True)
    template = overrides / "dockerignore.j2"
    template.write_text("first {{ name }}\n")
    spec = load_spec(SKETCH)
    env = make_environment([overrides.parent])
    assert env.get_template("docker/dockerignore.j2").render(name="x") == "first x\n"
    template.write_text("second {{ name }}\n")
    env = make_environment([overrides.parent])  # a new process would start like this
    assert env.get_template("docker/dockerignore.j2").render(name="x") == "second x\n"
    rendered = {a.path: a.text for a in render_artifacts(spec, tmp_path, ["docker"],
                                                         [overrides.parent])}
    assert rendered[".dockerignore"].endswith("second credit-risk\n")


def test_a_cache_folder_others_can_write_is_not_used(cache_home: Path) -> None:
    folder = cache_home / "mlgen" / "jinja"
    folder.mkdir(parents=True)
    folder.chmod(0o777)  # cache entries are unpickled: another user's file would run as us
    assert make_environment().bytecode_cache is None


def test_no_cache_when_the_folder_cannot_be_made(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where the folder should go
    monkeypatch.delenv("MLGEN_NO_CACHE", raising=False)
    assert make_environment().bytecode_cache is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "ok"))
    monkeypatch.setenv("MLGEN_NO_CACHE", "1")
    assert make_environment().bytecode_cache is None
