"""The wheel carries the templates and installs only the `mlgen` import name."""
from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

from .helpers import REPO


def test_wheel_contains_templates_and_no_generic_top_level_names(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("mlgen-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"mlgen"}, top_level
    for required in ("mlgen/templates/jenkins/Jenkinsfile.j2", "mlgen/templates/docker/Dockerfile.j2",
                     "mlgen/templates/kubernetes/base/deployment.yaml.j2",
                     "mlgen/templates/github-actions/ci.yml.j2", "mlgen/templates/scaffold/mlgen.yaml.j2",
                     "mlgen/models/__init__.py", "mlgen/cli.py"):
        assert required in names, required

    # `pip install` of that wheel into a fresh venv gives a working `mlgen`.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = env_dir / "bin" / "pip"
    subprocess.run([str(pip), "install", "-q", str(wheel)], check=True, capture_output=True)
    project = tmp_path / "p"
    result = subprocess.run([str(env_dir / "bin" / "mlgen"), "init", "--non-interactive",
                             "--name", "wheel-check", str(project)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (project / "k8s" / "base" / "deployment.yaml").is_file()
    missing = subprocess.run([str(env_dir / "bin" / "mlgen"), "-C", str(project), "serve"],
                             capture_output=True, text=True, check=False)
    # The base install has no model runtime: one line naming the extra, exit 2.
    assert missing.returncode == 2, missing.stderr
    assert "mlgen[runtime]" in missing.stderr
