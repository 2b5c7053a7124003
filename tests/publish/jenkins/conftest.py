"""Fixtures for the Jenkins tests: an emulator on a free port, users with chosen permissions,
model repositories written to tmp_path, and `mlgen` run in-process."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.jenkins import PERMISSIONS, JenkinsEmulator, JenkinsState, User

ADMIN_TOKEN = "admin-token-0123456789abcdef"
READER_PERMISSIONS = frozenset({"Overall/Read", "Job/Read", "Job/ExtendedRead"})


@pytest.fixture
def emulator() -> Iterator[JenkinsEmulator]:
    state = JenkinsState([
        User("admin", "admin-password", (ADMIN_TOKEN,)),
        User("reader", "reader-password", ("reader-token",), READER_PERMISSIONS),
        User("nobody", "nobody-password", ("nobody-token",), frozenset()),
        User("no-delete", "x", ("no-delete-token",), frozenset(PERMISSIONS) - {"Job/Delete"}),
    ], queue_seconds=0.02, build_seconds=0.05, scan_seconds=0.05)
    with JenkinsEmulator(state) as emu:
        yield emu


@pytest.fixture
def jenkins_env(
    emulator: JenkinsEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> JenkinsEmulator:
    monkeypatch.setenv("JENKINS_URL", emulator.url)
    monkeypatch.setenv("JENKINS_USER", "admin")
    monkeypatch.setenv("JENKINS_API_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("JENKINS_CA_BUNDLE", raising=False)
    return emulator


def write_spec(folder: Path, name: str = "credit-risk", *, jenkins_folder: str | None = "ml/retail",
               repository: str | None = "bank-ml/credit-risk", kind: str = "multibranch",
               description: str = "Probability of default for retail loans",
               api_url: str | None = None, jenkinsfile: str = "Jenkinsfile") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    jenkins = {"kind": kind, "credentials": {"github": "github-app"}}
    if jenkins_folder:
        jenkins["folder"] = jenkins_folder
    if api_url:
        jenkins["github_api_url"] = api_url
    import yaml

    doc = {
        "apiVersion": "mlgen/v1", "name": name, "description": description,
        "model": {"features": {"numeric": ["income", "age"]}},
        "outputs": {"jenkinsfile": jenkinsfile},
        "ci": {"jenkins": jenkins, "github": ({"repository": repository} if repository else {})},
    }
    path = folder / "mlgen.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def index_now(emu: JenkinsEmulator, project: str) -> None:
    """Have the emulator index a multibranch project at once, as a finished scan would: for
    tests about something else than the first scan (see
    tests/publish/jenkins/test_trigger_scan.py)."""
    import requests

    answer = requests.post(emu.url + "_emulator/indexing", json={"index_now": project}, timeout=5)
    answer.raise_for_status()


