"""`mlgen jenkins apply` and `mlgen sync --pr` on the example monorepo: one Jenkins job per
model (the python-jenkins client against the Jenkins emulator), and ONE pull request for all
models (PyGithub against the GitHub emulator), read back with git."""
from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.github import DEFAULT_TOKEN, Emulator
from tests.emulators.jenkins import JenkinsEmulator, JenkinsState, User
from tests.helpers import call_mlgen

from .conftest import GIT_ENV, MONOREPO

pytest.importorskip("github", reason="PyGithub is the 'github' extra")
pytest.importorskip("jenkins", reason="python-jenkins is the 'jenkins' extra")

TOKEN = "admin-token-0123456789abcdef"
HAND_EDIT = "# team note: reviewed by risk\n"


@pytest.fixture()
def jenkins_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[JenkinsEmulator]:
    state = JenkinsState([User("admin", "admin-password", (TOKEN,))], queue_seconds=0.02,
                         build_seconds=0.05, scan_seconds=0.05)
    with JenkinsEmulator(state) as emu:
        monkeypatch.setenv("JENKINS_URL", emu.url)
        monkeypatch.setenv("JENKINS_USER", "admin")
        monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.delenv("JENKINS_CA_BUNDLE", raising=False)
        yield emu


def test_jenkins_apply_registers_one_job_per_model(
        jenkins_env: JenkinsEmulator, monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call_mlgen(capsys, "-C", str(monorepo), "jenkins", "apply")
    assert code == 0, out + err
    for model in ("fraud", "rent"):
        item = jenkins_env.state.find(["ml", "monorepo", model])
        assert item is not None and item.kind == "multibranch", model
        root = ET.fromstring(item.xml)
        assert root.findtext("factory/scriptPath") == f"models/{model}/Jenkinsfile"
        assert root.findtext(".//source/repository") == "models"
    folder = jenkins_env.state.find(["ml", "monorepo"])
    assert folder is not None and sorted(folder.children) == ["fraud", "rent"]
    # Again: nothing to do; and pruning keeps both (they come from the same repository).
    code, out, _ = call_mlgen(capsys, "-C", str(monorepo), "jenkins", "apply")
    assert code == 0 and "0 job(s) created, 0 reconfigured" in out
    for where in (monorepo, monorepo / "models" / "rent"):
        code, out, err = call_mlgen(capsys, "-C", str(where), "jenkins", "prune", "--yes")
        assert code == 0, out + err
        assert all(jenkins_env.state.find(["ml", "monorepo", m]) for m in ("fraud", "rent"))


@pytest.fixture()
def github_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as emu:
        monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
        yield emu


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(root).parts
            and "__pycache__" not in p.parts}


def git(work: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(work), *args], capture_output=True, text=True,
                          check=True, env={**os.environ, **GIT_ENV}).stdout


def test_sync_pr_opens_one_pull_request_for_all_models(
        github_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = files_of(MONOREPO)
    # Both models' specs changed on the default branch; one model's Dockerfile has a hand edit.
    for model, old, new in (("fraud", 'version: "2.0.1"', 'version: "2.1.0"'),
                            ("rent", 'version: "0.2.0"', 'version: "0.3.0"')):
        path = f"models/{model}/mlgen.yaml"
        files[path] = files[path].decode().replace(old, new).encode()
    path = "models/fraud/k8s/base/deployment.yaml"
    files[path] = files[path] + HAND_EDIT.encode()
    github_env.add_repo("bank-ml/models", files)

    code, out, err = call_mlgen(capsys, "-C", str(MONOREPO), "sync", "--pr")
    assert code == 0, out + err
    assert "opened pull request #" in out
    [pull] = github_env.state.repo("bank-ml", "models").pulls
    assert "models/fraud/k8s/base/deployment.yaml" in pull["body"]
    assert "models/rent/k8s/base/deployment.yaml" in pull["body"]

    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", "-b", "mlgen/sync",
                    str(github_env.repo_path("bank-ml/models")), str(work)],
                   check=True, env={**os.environ, **GIT_ENV})
    assert len(git(work, "log", "--format=%H").split()) == 2  # the seed plus ONE sync commit
    deployment = (work / path).read_text()
    assert HAND_EDIT in deployment and '"2.1.0"' in deployment
    assert '"0.3.0"' in (work / "models/rent/k8s/base/deployment.yaml").read_text()
    # The branch is what a local sync would leave: check passes on it from the root.
    code, out, err = call_mlgen(capsys, "-C", str(work), "check", "-q")
    assert code == 0, out + err

    # Up to date now (after the merge): a second run opens no second pull request.
    git(work, "push", "-q", "origin", "mlgen/sync:main")
    code, out, err = call_mlgen(capsys, "-C", str(work), "sync", "--pr")
    assert code == 0, out + err
    assert len(github_env.state.repo("bank-ml", "models").pulls) == 1




def test_each_model_keeps_its_own_report_comment_on_a_shared_pull_request(
        github_env: Emulator, monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlgen.integrations.github import client as gh
    from mlgen.integrations.github import gitdata as pub

    github_env.add_repo("bank-ml/models", {"README.md": b"models\n"})
    client = gh.connect(gh.Settings.from_env({"GITHUB_TOKEN": DEFAULT_TOKEN,
                                              "GITHUB_API_URL": github_env.url},
                                             seconds_between_writes=0, backoff_factor=0.01))
    pr = pub.open_or_update_sync_pr(client, "bank-ml/models", {"x": b"1"}, "t", "b")
    for model, auc in (("fraud", "0.81"), ("rent", "0.64"), ("fraud", "0.83")):
        gate = monorepo / "models" / model / "reports" / "gate"
        gate.mkdir(parents=True, exist_ok=True)
        (gate / "gate.md").write_text(f"| metric | {auc} | ✅ |\n")
        code, out, err = call_mlgen(capsys, "-C", str(monorepo / "models" / model), "comment",
                                    "--pr", str(pr.pr_number))
        assert code == 0, out + err
    bodies = sorted(c["body"] for c in github_env.state.repo("bank-ml", "models").comments
                    if c["user"] == "mlgen-bot")
    assert len(bodies) == 2  # one per model; the second fraud run updated its own
    assert "## mlgen report: fraud" in bodies[0] and "0.83" in bodies[0]
    assert "## mlgen report: rent" in bodies[1] and "0.64" in bodies[1]


def test_the_bot_checks_and_syncs_a_monorepo_pull_request(tmp_path: Path) -> None:
    import requests
    from mlgen.integrations.github import client as gh
    from mlgen.publish.github.bot import STATUS_MARKER, Bot, BotConfig, github_handler

    from tests.publish.github.test_bot import SECRET, wait_for

    files = files_of(MONOREPO)
    spec = "models/rent/mlgen.yaml"  # changed without a sync: rent's files are stale
    files[spec] = files[spec].decode().replace('version: "0.2.0"', 'version: "0.3.0"').encode()
    with Emulator() as emu:
        emu.add_repo("bank-ml/models", files, permissions={"dev": "write"})
        emu.add_user("dev", "dev-token")
        bot_client = gh.connect(gh.Settings.from_env(
            {"GITHUB_TOKEN": DEFAULT_TOKEN, "GITHUB_API_URL": emu.url}, seconds_between_writes=0))
        bot = Bot(BotConfig(SECRET, tmp_path / "bot.sqlite", port=0),
                  github_handler(bot_client)).start()  # the real renderer
        try:
            emu.add_hook(bot.url + "/webhook", SECRET.decode())
            repo = emu.state.repo("bank-ml", "models")
            s = requests.Session()
            s.headers["Authorization"] = "token dev-token"
            api = f"{emu.url}/repos/bank-ml/models"
            main = s.get(api + "/git/ref/heads/main").json()["object"]["sha"]
            s.post(api + "/git/refs", json={"ref": "refs/heads/feature", "sha": main})
            number = s.post(api + "/pulls", json={"title": "feature", "head": "feature",
                                                  "base": "main"}).json()["number"]

            def status() -> str:
                return next((c["body"] for c in repo.comments
                             if STATUS_MARKER in c["body"] and c["user"] == "mlgen-bot"), "")

            wait_for(lambda: "differ" in status(), timeout=60)
            assert "models/rent/k8s/base/deployment.yaml" in status()
            assert "models/fraud/" not in status()
            s.post(api + f"/issues/{number}/comments", json={"body": "/mlgen sync"})
            wait_for(lambda: "match" in status(), timeout=60)
            head = repo.git.resolve("refs/heads/feature")
            deployment = repo.git.git("show", f"{head}:models/rent/k8s/base/deployment.yaml")
            assert b'"0.3.0"' in deployment
            assert bot.failures == 0
        finally:
            bot.stop()


OVERRIDE = "ci/templates/docker/dockerignore.j2"
CUSTOM = "# fraud's own ignore list\n*.parquet\n"


def with_fraud_overrides(override_at: str) -> dict[str, bytes]:
    """The example monorepo with `templates: ci/templates` in fraud's spec and one override
    file at `override_at` (a repository path)."""
    files = files_of(MONOREPO)
    spec = "models/fraud/mlgen.yaml"
    files[spec] = files[spec] + b"templates: ./ci/templates/\n"
    files[override_at] = CUSTOM.encode()
    return files


def test_sync_pr_renders_a_models_trusted_overrides_from_its_own_folder(
        github_env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    github_env.add_repo("bank-ml/models", with_fraud_overrides(f"models/fraud/{OVERRIDE}"))
    code, out, err = call_mlgen(capsys, "sync", "--pr", "--repo", "bank-ml/models",
                                "--trust-templates", "bank-ml/models")
    assert code == 0, out + err
    git = github_env.state.repo("bank-ml", "models").git
    fraud = git.git("show", "refs/heads/mlgen/sync:models/fraud/.dockerignore").decode()
    rent = git.git("show", "refs/heads/mlgen/sync:models/rent/.dockerignore").decode()
    assert fraud.endswith(CUSTOM) and CUSTOM not in rent


def test_a_models_overrides_folder_is_relative_to_its_folder_not_the_root(
        github_env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    # The folder exists at the repository root only: fraud's `ci/templates` names nothing.
    github_env.add_repo("bank-ml/models", with_fraud_overrides(OVERRIDE))
    code, out, err = call_mlgen(capsys, "sync", "--pr", "--repo", "bank-ml/models",
                                "--trust-templates", "bank-ml/models")
    assert code != 0
    assert ("bank-ml/models:models/fraud/mlgen.yaml: templates: './ci/templates/' names no "
            "folder of files in the repository") in err, out + err
    assert github_env.state.repo("bank-ml", "models").pulls == []
