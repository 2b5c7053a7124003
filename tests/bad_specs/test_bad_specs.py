"""Every malformed spec in this folder exits 2 through the CLI, names the key path and the
line, says what is wrong, and writes nothing. Each file's first line is its expectation:
`# expect: <key path> | <line> | <message fragment>` (an empty key path: a whole-file error)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlgen.cli import main

HERE = Path(__file__).parent
CASES = sorted(HERE.glob("*.yaml"))


def expectation(path: Path) -> tuple[str, int, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: ...'"
    key, line, fragment = (part.strip() for part in first[len("# expect: "):].split("|", 2))
    return key, int(line), fragment


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
@pytest.mark.parametrize("command", [["render"], ["validate", "--rendered"]])
def test_bad_spec_exits_2_names_key_and_line_writes_nothing(
        case: Path, command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, line, fragment = expectation(case)
    shutil.copyfile(case, tmp_path / "mlgen.yaml")
    assert main(["-C", str(tmp_path), *command]) == 2
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("error: "), err
    assert f"mlgen.yaml:{line}:" in first, err
    if key:
        assert f" {key}: " in first, err
    assert fragment in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlgen.yaml"]


def test_console_script_exit_code(tmp_path: Path) -> None:
    shutil.copyfile(HERE / "12-name-uppercase.yaml", tmp_path / "mlgen.yaml")
    proc = subprocess.run([sys.executable, "-m", "mlgen", "-C", str(tmp_path), "render"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert "mlgen.yaml:3:7: name: 'Credit-Risk' must be a DNS-1123 label" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", ["58-pip-index-credentials.yaml",
                                  "63-gitops-repo-url-credentials.yaml"])
def test_credentials_in_a_url_are_never_echoed(case: str, tmp_path: Path) -> None:
    """The URL lands in generated files and the error on stderr (CI logs): neither may hold it."""
    shutil.copyfile(HERE / case, tmp_path / "mlgen.yaml")
    proc = subprocess.run([sys.executable, "-m", "mlgen", "-C", str(tmp_path), "render"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert "must not carry credentials" in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout
