"""`mlgen sync --pr` on real `mlgen init` projects held by the GitHub emulator, through the CLI
and the real PyGithub client: the commit on mlgen/sync is cloned with git and read back, so
what is checked is what a reviewer would merge. Hand edits survive as in local sync; overlaps
become conflicts listed in the PR; an up-to-date repository costs two reads and no write."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.github import DEFAULT_TOKEN, Emulator

pytest.importorskip("github", reason="PyGithub is the 'github' extra")

from mlgen.cli import main
from mlgen.integrations.github import client as gh
from mlgen.integrations.github import gitdata as pub
from mlgen.sync.lock import LOCK_PATH

from tests.helpers import call_mlgen

EDIT = "# team note: keep the build small\n"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every file `mlgen init` writes (generated files, scaffold, lock), by path."""
    root = tmp_path_factory.mktemp("init") / "credit-risk"
    assert main(["init", str(root), "--non-interactive", "--name", "credit-risk"]) == 0
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture()
def emu() -> Any:
    with Emulator() as emulator:
        yield emulator


def edited(files: dict[str, bytes], path: str, old: str, new: str) -> dict[str, bytes]:
    text = files[path].decode()
    assert old in text, f"{old!r} not in {path}"
    return {**files, path: text.replace(old, new, 1).encode()}


def new_port(files: dict[str, bytes]) -> dict[str, bytes]:
    """The spec changed on the default branch (without a local sync): port 8080 -> 9090."""
    return edited(files, "mlgen.yaml", "port: 8080", "port: 9090")


@pytest.fixture()
def mlgen(emu: Emulator, capsys: pytest.CaptureFixture[str],
          monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the real CLI entry point (exit codes as a user sees them) against the emulator."""
    monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", emu.url)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code, out, err = call_mlgen(capsys, *args)
        assert DEFAULT_TOKEN not in out + err
        return code, out, err
    return run


def clone(emu: Emulator, repo: str, dest: Path, branch: str = "mlgen/sync") -> Path:
    subprocess.run(["git", "clone", "-q", "-b", branch, str(emu.repo_path(repo)), str(dest)],
                   check=True, env={**os.environ, **GIT_ENV})
    return dest


def git(work: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(work), *args], capture_output=True, text=True,
                          check=True, env={**os.environ, **GIT_ENV}).stdout


def client(emu: Emulator) -> gh.GitHubClient:
    return gh.connect(gh.Settings.from_env({"GITHUB_TOKEN": DEFAULT_TOKEN,
                                            "GITHUB_API_URL": emu.url},
                                           seconds_between_writes=0, backoff_factor=0.01))


def test_hand_edit_away_from_changed_lines_is_kept(emu: Emulator, initialised: dict[str, bytes],
                                                   tmp_path: Path, mlgen: Any) -> None:
    files = edited(new_port(initialised), "Dockerfile", "FROM ${BASE_IMAGE} AS build\n",
                   "FROM ${BASE_IMAGE} AS build\n" + EDIT)
    emu.add_repo("acme/kept", files)
    code, out, err = mlgen("sync", "--pr", "--repo", "acme/kept")
    assert code == 0, err
    assert "opened pull request #" in out and "merge  Dockerfile" in out
    work = clone(emu, "acme/kept", tmp_path / "w")
    assert len(git(work, "log", "--format=%H").split()) == 2  # the seed plus ONE sync commit
    dockerfile = (work / "Dockerfile").read_text()
    assert EDIT in dockerfile and "EXPOSE 9090" in dockerfile and "8080" not in dockerfile
    assert "9090" in (work / "k8s/base/deployment.yaml").read_text()
    assert (work / "src").is_dir()  # files mlgen does not generate are untouched
    # the branch is what a local `mlgen sync` would have left: `mlgen check` passes on it
    assert main(["-C", str(work), "check", "-q"]) == 0
    [pull] = emu.state.repo("acme", "kept").pulls
    assert "| `Dockerfile` | merge:" in pull["body"] and "Conflicts" not in pull["body"]
    assert "Generator: mlgen" in pull["body"] and f"`{LOCK_PATH}`" in pull["body"]


def test_edit_on_changed_lines_is_a_conflict_listed_in_the_pr(
        emu: Emulator, initialised: dict[str, bytes], tmp_path: Path, mlgen: Any) -> None:
    files = edited(new_port(initialised), "Dockerfile", "EXPOSE 8080", "EXPOSE 8081")
    emu.add_repo("acme/inline", files)
    emu.add_repo("acme/rej", files)
    code, out, err = mlgen("sync", "--pr", "--repo", "acme/inline")
    assert code == 1 and "conflict  Dockerfile" in out
    assert "need you on branch mlgen/sync (pull request #" in err
    [pull] = emu.state.repo("acme", "inline").pulls
    assert "### Conflicts to resolve" in pull["body"] and "- [ ] `Dockerfile`" in pull["body"]
    inline = (clone(emu, "acme/inline", tmp_path / "inline") / "Dockerfile").read_text()
    assert "<<<<<<< yours (on disk)\nEXPOSE 8081\n=======\nEXPOSE 9090\n>>>>>>> new render" \
        in inline

    code, out, _ = mlgen("sync", "--pr", "--repo", "acme/rej", "--conflict", "rej", "--json")
    assert code == 1 and json.loads(out)["conflicts"] == ["Dockerfile"]
    work = clone(emu, "acme/rej", tmp_path / "rej")
    assert "EXPOSE 8081" in (work / "Dockerfile").read_text()  # your version kept
    assert "EXPOSE 9090" in (work / "Dockerfile.rej").read_text()
    [pull] = emu.state.repo("acme", "rej").pulls
    assert "`Dockerfile.rej`" in pull["body"] and ".rej" in pull["body"].split("Conflicts")[1]


def test_up_to_date_repository_gets_no_pr_and_no_write(emu: Emulator, initialised: dict[str, bytes],
                                                       mlgen: Any) -> None:
    emu.add_repo("acme/current", initialised)
    before = emu.repo_path("acme/current")
    refs = subprocess.run(["git", "-C", str(before), "for-each-ref"], capture_output=True,
                          text=True, check=True).stdout
    emu.reset_counts()
    code, out, _ = mlgen("sync", "--pr", "--repo", "acme/current")
    assert code == 0 and "already up to date" in out
    # one GraphQL query (base commit, mlgen.yaml, lock, sync branch) and the tree by SHA
    assert emu.counts() == {"GRAPHQL": 1, "GET": 1}
    assert emu.state.repo("acme", "current").pulls == []
    assert subprocess.run(["git", "-C", str(before), "for-each-ref"], capture_output=True,
                          text=True, check=True).stdout == refs


def test_changed_repository_request_count(emu: Emulator, initialised: dict[str, bytes]) -> None:
    """Fresh PR for a repository nobody edited: 2 reads (one GraphQL query for the base commit,
    mlgen.yaml, the lock, the sync branch and its open PR; the tree by SHA: the generated files
    are known from the lock's bases), 4 writes (tree, commit, branch, pull request)."""
    from mlgen.publish.github.sync_pr import sync_pull_request

    emu.add_repo("acme/changed", new_port(initialised))
    emu.reset_counts()
    outcome = sync_pull_request(client(emu), "acme/changed")
    assert outcome["status"] == "created" and outcome["conflicts"] == []
    counts = emu.counts()
    assert counts == {"GRAPHQL": 1, "GET": 1, "POST": 4}  # tree, commit, ref, pull request


def test_rerun_makes_no_write_and_a_new_change_updates_the_same_pr(
        emu: Emulator, initialised: dict[str, bytes], tmp_path: Path) -> None:
    from mlgen.publish.github.sync_pr import sync_pull_request

    emu.add_repo("acme/again", new_port(initialised))
    c = client(emu)
    first = sync_pull_request(c, "acme/again")
    emu.reset_counts()
    again = sync_pull_request(c, "acme/again")
    assert (again["status"], again["pr"]) == ("unchanged", first["pr"])
    assert emu.counts() == {"GRAPHQL": 1, "GET": 1}  # the open PR's marker: no write at all
    dry = sync_pull_request(c, "acme/again", dry_run=True)  # knows the PR holds it all
    assert (dry["status"], dry["pr"]) == ("unchanged", first["pr"])

    # someone changes the spec on main again: the same PR gets one new commit, force-moved
    repo = c.repo("acme/again")
    tree = gh.read_tree(c, repo, "main")
    spec = gh.read_blob(c, repo, tree.blob_sha("mlgen.yaml") or "")
    head = emu.state.repo("acme", "again").git.resolve("refs/heads/main") or ""
    sha = pub.create_commit(c, repo, base_commit=head, base_tree=tree.sha, message="port 9191",
                           changes={"mlgen.yaml": spec.replace(b"port: 9090", b"port: 9191")})
    pub.set_branch(c, repo, "main", sha, exists=True)
    third = sync_pull_request(c, "acme/again")
    assert (third["status"], third["pr"]) == ("updated", first["pr"])
    pulls = emu.state.repo("acme", "again").pulls
    assert [p["state"] for p in pulls] == ["open"]
    work = clone(emu, "acme/again", tmp_path / "w")
    assert git(work, "rev-parse", "HEAD~1").strip() == sha  # one commit on the new main
    assert "EXPOSE 9191" in (work / "Dockerfile").read_text()

    # a conflict resolved by hand on the branch is never forced away by the next run
    git(work, "commit", "-q", "--allow-empty", "-m", "resolved by hand")
    git(work, "push", "-q", "origin", "mlgen/sync")
    sha2 = pub.create_commit(c, repo, base_commit=sha, base_tree=gh.read_tree(c, repo, "main").sha,
                            changes={"README.md": b"new readme\n"}, message="docs")
    pub.set_branch(c, repo, "main", sha2, exists=True)
    with pytest.raises(gh.GitHubError, match="commits mlgen did not make"):
        sync_pull_request(c, "acme/again")


def test_base_branch_other_than_the_default(emu: Emulator, initialised: dict[str, bytes],
                                            tmp_path: Path, mlgen: Any) -> None:
    """--base compares with that branch and opens the PR into it; main is left alone."""
    emu.add_repo("acme/rel", initialised)
    c = client(emu)
    repo = c.repo("acme/rel")
    main_head = emu.state.repo("acme", "rel").git.resolve("refs/heads/main") or ""
    tree = gh.read_tree(c, repo, "main")
    spec = gh.read_blob(c, repo, tree.blob_sha("mlgen.yaml") or "")
    release = pub.create_commit(c, repo, base_commit=main_head, base_tree=tree.sha,
                                message="release: port 9191", changes={
                                    "mlgen.yaml": spec.replace(b"port: 8080", b"port: 9191")})
    repo.create_git_ref("refs/heads/release", release)
    code, out, _ = mlgen("sync", "--pr", "--repo", "acme/rel")
    assert code == 0 and "already up to date" in out  # main is current
    code, out, err = mlgen("sync", "--pr", "--repo", "acme/rel", "--base", "release")
    assert code == 0, err
    [pull] = emu.state.repo("acme", "rel").pulls
    assert pull["base_ref"] == "release"
    work = clone(emu, "acme/rel", tmp_path / "w")
    assert git(work, "rev-parse", "HEAD~1").strip() == release
    assert "EXPOSE 9191" in (work / "Dockerfile").read_text()
    fleet = tmp_path / "fleet.yaml"  # --base applies to fleet entries without a branch: too
    fleet.write_text("- acme/rel\n")
    code, out, _ = mlgen("sync", "--pr", "--fleet", str(fleet), "--base", "release", "--json",
                         "--dry-run")
    assert code == 0 and json.loads(out)["repositories"][0]["status"] == "unchanged"
    # main moves on while that PR into release is open: mlgen/sync is not rewritten under it
    tree = gh.read_tree(c, repo, "main")
    moved = pub.create_commit(c, repo, base_commit=main_head, base_tree=tree.sha,
                              message="main: port 9292", changes={
                                  "mlgen.yaml": spec.replace(b"port: 8080", b"port: 9292")})
    pub.set_branch(c, repo, "main", moved, exists=True)
    head_before = emu.state.repo("acme", "rel").git.resolve("refs/heads/mlgen/sync")
    code, _, err = mlgen("sync", "--pr", "--repo", "acme/rel")
    assert code == 1 and "open pull request into release" in err
    assert emu.state.repo("acme", "rel").git.resolve("refs/heads/mlgen/sync") == head_before
    code, _, err = mlgen("sync", "--base", "release")
    assert code == 2 and "add --pr" in err


def test_repository_defaults_to_the_spec(emu: Emulator, initialised: dict[str, bytes],
                                         tmp_path: Path, mlgen: Any) -> None:
    emu.add_repo("bank-ml/credit-risk", new_port(initialised))
    folder = tmp_path / "local"
    folder.mkdir()
    spec = initialised["mlgen.yaml"].decode().replace(
        "  github:\n", "  github:\n    repository: bank-ml/credit-risk\n", 1)
    (folder / "mlgen.yaml").write_text(spec)
    code, out, err = mlgen("-C", str(folder), "sync", "--pr", "--dry-run", "--json")
    assert code == 0, err
    outcome = json.loads(out)
    assert outcome["status"] == "would-change" and "Dockerfile" in outcome["changed"]
    assert outcome["files"]["Dockerfile"] == "update"
    assert emu.state.repo("bank-ml", "credit-risk").pulls == []
    assert mlgen("-C", str(folder), "sync", "--fleet", str(folder / "mlgen.yaml"))[0] == 2


def test_fleet_through_the_cli(emu: Emulator, initialised: dict[str, bytes],
                               tmp_path: Path, mlgen: Any) -> None:
    emu.add_repo("org/a", new_port(initialised))
    emu.add_repo("org/b", initialised)
    emu.add_repo("org/c", edited(new_port(initialised), "Dockerfile", "EXPOSE 8080", "EXPOSE 1"))
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("- org/a\n- org/b\n- org/c\n- org/missing\n")
    state, report = tmp_path / "state.json", tmp_path / "report.json"
    args = ["sync", "--pr", "--fleet", str(fleet), "--state", str(state), "--report",
            str(report), "--concurrency", "2"]
    emu.reset_counts()
    code, out, err = mlgen(*args, "--dry-run")
    assert not state.exists() and set(emu.counts()) == {"GET", "GRAPHQL"}  # reads only
    rows = [line.split()[:2] for line in out.splitlines() if line.startswith("org/")]
    assert ["org/a", "would-change"] in rows and ["org/c", "would-change"] in rows, (code, err)
    assert "4/4" in err  # the progress bar goes to stderr
    code, out, _ = mlgen(*args)
    assert code == 1  # org/missing failed
    summary = json.loads(report.read_text())["summary"]
    assert summary == {"created": 2, "failed": 1, "up-to-date": 1}
    assert "org/c" in out and "1 conflict(s) to resolve" in out
    assert "org/b" not in out.split("total:")[0]  # up to date: not listed
    emu.reset_counts()
    code, out, _ = mlgen(*args)
    assert code == 1 and "org/missing" in out
    # done repositories are skipped; the failed one is retried (reads only)
    assert set(emu.counts()) <= {"GET", "GRAPHQL"} and emu.counts()
    assert json.loads(state.read_text())["done"].keys() == {"org/a", "org/b", "org/c"}
