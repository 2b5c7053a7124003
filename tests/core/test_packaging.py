"""What a user outside this checkout gets: the wheel, installed on its own.

- The wheel carries every template (dotfiles included) and installs only the `mlgen` import name.
- `mlgen init` from the wheel writes exactly what it writes from the editable install.
- A generated project installs its requirements.txt from a private package index that holds
  nothing but the mlgen wheel and its dependencies (as a bank's mirror would), with the real
  index out of reach, and its own tests pass there.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlgen import DISTRIBUTION, __version__

from tests.helpers import REPO

WHEEL_NAME = f"{DISTRIBUTION.replace('-', '_')}-{__version__}-py3-none-any.whl"


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert out.returncode == 0, (
        f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(outdir), str(REPO)])
    built = sorted(p.name for p in outdir.glob("*.whl"))
    assert built == [WHEEL_NAME], f"expected the distribution {DISTRIBUTION!r}: {built}"
    return outdir / WHEEL_NAME


@pytest.fixture(scope="module")
def wheel_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel (and its base dependencies) installed."""
    env_dir = tmp_path_factory.mktemp("wheel-venv") / "venv"
    venv.create(env_dir, with_pip=True)
    _run([str(env_dir / "bin" / "pip"), "install", "-q", str(wheel)])
    return env_dir


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_wheel_contains_templates_and_no_generic_top_level_names(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {
        n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))
    }
    assert top_level == {"mlgen"}, top_level
    shipped = {
        n.removeprefix("mlgen/templates/") for n in names if n.startswith("mlgen/templates/")
    }
    in_checkout = {p.relative_to(REPO / "templates").as_posix()
                   for p in (REPO / "templates").rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts}
    assert in_checkout - shipped == set(), "templates missing from the wheel"
    for required in ("mlgen/templates/scaffold/project/.gitignore", "mlgen/models/__init__.py",
                     "mlgen/cli.py", "mlgen/deliver/gitops.py",
                     "mlgen/validate/argocd-application.schema.json",
                     "mlgen/validate/azure-pipelines.schema.json",
                     "mlgen/validate/THIRD_PARTY_NOTICES.txt",
                     "mlgen/templates/azure-pipelines/azure-pipelines.yml.j2",
                     "mlgen/validate/argo-rollout.schema.json",
                     "mlgen/templates/kubernetes/rollouts/rollout.yaml.j2"):
        assert required in names, required


def test_init_from_the_wheel_writes_what_the_checkout_writes(wheel_venv: Path,
                                                            tmp_path: Path) -> None:
    from_wheel, from_checkout = tmp_path / "wheel" / "p", tmp_path / "checkout" / "p"
    args = ["init", "--non-interactive", "--name", "wheel-check"]
    _run([str(wheel_venv / "bin" / "mlgen"), *args, str(from_wheel)])
    _run([sys.executable, "-m", "mlgen", *args, str(from_checkout)])
    wheel_files, checkout_files = _files(from_wheel), _files(from_checkout)
    assert ".gitignore" in wheel_files
    assert sorted(wheel_files) == sorted(checkout_files)
    differ = [name for name in wheel_files if wheel_files[name] != checkout_files[name]]
    assert differ == []

    missing = subprocess.run([str(wheel_venv / "bin" / "mlgen"), "-C", str(from_wheel), "serve"],
                             capture_output=True, text=True, check=False)
    # The base install has no model runtime: one line naming the extra, exit 2.
    assert missing.returncode == 2, missing.stderr
    assert f"pip install '{DISTRIBUTION}[runtime]'" in missing.stderr


# ---- a private package index -----------------------------------------------------------------


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _write_simple_index(wheelhouse: Path, root: Path) -> None:
    """A PEP 503 simple index of the files in `wheelhouse`, as a bank's mirror serves one."""
    projects: dict[str, list[str]] = {}
    for dist in sorted(wheelhouse.iterdir()):
        name = dist.name.split("-")[0] if dist.suffix == ".whl" else dist.name.rsplit("-", 1)[0]
        projects.setdefault(_normalise(name), []).append(dist.name)
    for project, files in projects.items():
        folder = root / "simple" / project
        folder.mkdir(parents=True)
        links = "".join(f'<a href="../../files/{f}">{f}</a>\n' for f in files)
        (folder / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    (root / "simple" / "index.html").write_text(
        "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(projects)))
    shutil.copytree(wheelhouse, root / "files")


@pytest.fixture()
def private_index(tmp_path: Path, wheel: Path) -> Iterator[tuple[str, Path]]:
    """(index URL, wheelhouse): the mlgen wheel plus the dependencies a new project needs."""
    probe = tmp_path / "probe"
    _run(
        [sys.executable, "-m", "mlgen", "init", "--non-interactive", "--name", "probe", str(probe)]
    )
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    shutil.copy(wheel, wheelhouse)
    # Filling the mirror is the one step that may use the machine's usual index.
    _run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d",
          str(wheelhouse), "--find-links", str(wheel.parent), "-r",
          str(probe / "requirements.txt"), "pip", "setuptools", "wheel"], timeout=900)
    _write_simple_index(wheelhouse, tmp_path / "index")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(tmp_path / "index"))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/", wheelhouse
    finally:
        server.shutdown()
        server.server_close()


def _isolated_pip_env(index_url: str) -> dict[str, str]:
    """No pip configuration file, no PIP_* from the machine: only the private index."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=index_url, PIP_NO_CACHE_DIR="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


@pytest.mark.slow
def test_new_project_installs_from_a_private_index_and_its_tests_pass(
        private_index: tuple[str, Path], tmp_path: Path) -> None:
    index_url, _ = private_index
    project = tmp_path / "credit-model"
    _run([sys.executable, "-m", "mlgen", "init", "--non-interactive", "--name", "credit-model",
          str(project)])
    requirements = (project / "requirements.txt").read_text()
    assert f"{DISTRIBUTION}[runtime]=={__version__}" in requirements.splitlines()

    env = _isolated_pip_env(index_url)
    project_venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(project_venv)], env=env)
    pip = str(project_venv / "bin" / "pip")
    installed = _run([pip, "install", "-r", "requirements.txt"], cwd=project, env=env, timeout=900)
    assert "pypi.org" not in installed.stdout + installed.stderr
    shown = _run([pip, "show", DISTRIBUTION], env=env)
    assert f"Version: {__version__}" in shown.stdout

    # As the generated CI runs them: the venv's bin first on PATH, mlgen from the wheel.
    env["PATH"] = f"{project_venv / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    mlgen = str(project_venv / "bin" / "mlgen")
    _run([mlgen, "-C", str(project), "run", "lint"], env=env, timeout=300)
    tests = _run([mlgen, "-C", str(project), "run", "test"], env=env, timeout=600)
    assert re.search(r"\b\d+ passed\b", tests.stdout + tests.stderr), tests.stdout[-2000:]
    assert " failed" not in tests.stdout


def test_no_install_step_names_the_unrelated_mlgen_distribution(tmp_path: Path) -> None:
    """PyPI's `mlgen` is another project: nothing mlgen writes may install it."""
    project = tmp_path / "p"
    _run([sys.executable, "-m", "mlgen", "init", "--non-interactive", "--name", "p", str(project)])
    bad = re.compile(r"(?<![\w-])mlgen(\[[a-z,]+\])?(==|>=|~=)|pypi\.org/project/mlgen/")
    offenders = [f"{name}: {line.strip()}" for name, data in _files(project).items()
                 for line in data.decode(errors="replace").splitlines() if bad.search(line)]
    assert offenders == []
    for name in ("Jenkinsfile", ".github/workflows/ci.yml"):
        assert f"{DISTRIBUTION}[all]=={__version__}" in (project / name).read_text(), name
