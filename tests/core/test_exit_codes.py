"""Every spec or usage problem exits 2 with one clear line, through the real console script."""
from __future__ import annotations

from pathlib import Path

from tests.helpers import SKETCH, run_mlgen, snapshot


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_jenkins_plan_without_a_repository_is_a_spec_error(tmp_path: Path) -> None:
    text = "".join(line for line in SKETCH.read_text().splitlines(keepends=True)
                   if not line.lstrip().startswith("repository:"))
    (tmp_path / "mlgen.yaml").write_text(text)
    # A port nobody listens on: the spec is judged before any request is made.
    result = run_mlgen("-C", str(tmp_path), "jenkins", "plan", "--url", "http://127.0.0.1:9",
                       "--retries", "0")
    assert result.returncode == 2, result.stderr
    assert _errors(result.stderr) == [
        (f"error: {tmp_path / 'mlgen.yaml'}: ci.github.repository: needed to register the Jenkins "
         "job (the job checks out that repository); set it to 'owner/name'")], result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_outside_a_repository_is_a_spec_error(tmp_path: Path) -> None:
    result = run_mlgen("-C", str(tmp_path), "migrate")
    assert result.returncode == 2, result.stderr
    assert _errors(result.stderr) == [
        (f"error: {tmp_path / 'mlgen.yaml'}: file not found; create one with `mlgen init` or "
         "pass -C DIR")], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_migrate_of_a_spec_it_cannot_read_is_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / "mlgen.yaml").write_text("name: m\nserve: {port: 8080}\n")  # no apiVersion
    result = run_mlgen("-C", str(tmp_path), "migrate")
    assert result.returncode == 2, result.stderr
    assert "apiVersion: missing or not a string" in result.stderr


def test_init_refusing_to_overwrite_is_a_usage_error(tmp_path: Path) -> None:
    assert run_mlgen("init", "--non-interactive", "--name", "m1", str(tmp_path)).returncode == 0
    before = snapshot(tmp_path)
    result = run_mlgen("init", "--non-interactive", "--name", "m1", str(tmp_path))
    assert result.returncode == 2, result.stderr
    (line,) = _errors(result.stderr)
    assert line.startswith(f"error: {tmp_path}: ") and "already exist" in line
    assert "nothing was written" in line and "--force" in line and "mlgen sync" in line
    assert snapshot(tmp_path) == before
