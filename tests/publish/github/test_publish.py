"""mlgen's GitHub publishing, driven through the real PyGithub client against the emulator over
HTTP: one commit on mlgen/sync read back with `git clone`, never a duplicate PR, the report
comment found by marker AND author, dispatch, permissions, and the fault paths."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.emulators.github import DEFAULT_TOKEN, Emulator

pytest.importorskip("github", reason="PyGithub is the 'github' extra")

from mlgen.cli import cli
from mlgen.integrations.github import client as gh
from mlgen.integrations.github import gitdata as pub

from tests.helpers import REPO as REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "credit-risk" / "mlgen.yaml"


def fake_render(spec_text: str) -> dict[str, bytes]:
    """Stands in for the templates where a test is about GitHub, not rendering."""
    name = spec_text.split("name:")[1].split()[0]
    return {"Jenkinsfile": f"pipeline {{ // {name}\n}}\n".encode(),
            ".github/workflows/ci.yml": f"name: {name}\n".encode()}


def synced(spec_text: str, render: Any = fake_render) -> dict[str, str]:
    """A repository as a clean sync leaves it: spec, generated files and lock."""
    from mlgen.publish.github.sync_pr import synced_files

    return {"mlgen.yaml": spec_text,
            **{p: d.decode() for p, d in synced_files(spec_text, render).items()}}


@pytest.fixture()
def emu() -> Any:
    with Emulator() as emulator:
        yield emulator


def client(emu: Emulator, token: str = DEFAULT_TOKEN, **kw: Any) -> gh.GitHubClient:
    return gh.connect(gh.Settings.from_env({"GITHUB_TOKEN": token, "GITHUB_API_URL": emu.url},
                                           seconds_between_writes=0,
                                           **{"backoff_factor": 0.01, **kw}))


def clone(emu: Emulator, repo: str, branch: str, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", "-b", branch, str(emu.repo_path(repo)), str(dest)],
                   check=True)
    return dest


def test_sync_pr_is_one_commit_and_never_duplicated(emu: Emulator, tmp_path: Path) -> None:
    # synced under an older name: files mlgen generated and nobody edited since
    emu.add_repo("acme/m", {**synced("name: old\n"), "mlgen.yaml": "name: m\n",
                            "src/train.py": "print()\n"})
    from mlgen.publish.github.sync_pr import sync_pull_request

    c = client(emu)
    first = sync_pull_request(c, "acme/m", render=fake_render)
    assert first["status"] == "created"
    work = clone(emu, "acme/m", "mlgen/sync", tmp_path / "w")
    log = subprocess.run(["git", "-C", str(work), "log", "--format=%s"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert len(log) == 2  # the seed commit plus exactly one sync commit
    assert (work / "Jenkinsfile").read_text() == "pipeline { // m\n}\n"
    assert (work / ".github/workflows/ci.yml").read_text() == "name: m\n"
    assert (work / "src/train.py").read_text() == "print()\n"  # untouched files stay
    emu.reset_counts()
    again = sync_pull_request(c, "acme/m", render=fake_render)
    assert again["status"] == "unchanged" and again["pr"] == first["pr"]
    assert emu.counts() == {"GRAPHQL": 1, "GET": 1}  # a rerun makes no write
    pulls = emu.state.repo("acme", "m").pulls
    assert [p["state"] for p in pulls] == ["open"]


def test_up_to_date_repository_costs_two_reads(emu: Emulator) -> None:
    emu.add_repo("acme/u", synced("name: u\n"))
    from mlgen.publish.github.sync_pr import sync_pull_request

    outcome = sync_pull_request(client(emu), "acme/u", render=fake_render)
    assert outcome["status"] == "up-to-date"
    assert emu.counts() == {"GRAPHQL": 1, "GET": 1}


def test_spent_graphql_limit_waits_for_the_reset(emu: Emulator) -> None:
    """github.com answers a spent GraphQL budget with 200 + RATE_LIMITED (not a 403 that
    PyGithub's retry would catch): mlgen waits for X-RateLimit-Reset and asks again."""
    import time

    from mlgen.publish.github.sync_pr import sync_pull_request

    emu.add_repo("acme/rl", synced("name: rl\n"))
    c = client(emu)
    emu.faults(rate_limit_remaining=0, rate_limit_reset=int(time.time()) + 1)
    outcome = sync_pull_request(c, "acme/rl", render=fake_render)
    assert outcome["status"] == "up-to-date"
    assert emu.counts() == {"GRAPHQL": 2, "GET": 1}  # the limited query, its retry, the tree
    emu.faults(rate_limit_remaining=0, rate_limit_reset=int(time.time()) + 3600)
    with pytest.raises(gh.GitHubError, match="GraphQL rate limit resets in"):
        sync_pull_request(client(emu, max_rate_limit_wait=5), "acme/rl", render=fake_render)
    emu.faults(rate_limit_remaining=None)


def test_missing_repository_or_spec_is_a_clear_error(emu: Emulator) -> None:
    from mlgen.errors import MlgenError
    from mlgen.publish.github.sync_pr import sync_pull_request

    with pytest.raises(gh.GitHubError) as info:
        sync_pull_request(client(emu), "acme/nope", render=fake_render)
    assert str(info.value) == ("GitHub read acme/nope@HEAD (GraphQL) failed (404): Could not "
                               "resolve to a Repository with the name 'acme/nope'.")
    emu.add_repo("acme/nospec", {"README.md": "hello\n"})
    with pytest.raises(MlgenError, match=r"no mlgen.yaml on its default branch \(main\)"):
        sync_pull_request(client(emu), "acme/nospec", render=fake_render)


def test_existing_pr_is_updated_not_duplicated(emu: Emulator) -> None:
    emu.add_repo("acme/d", {"mlgen.yaml": "name: d\n"})
    c = client(emu)
    first = pub.open_or_update_sync_pr(c, "acme/d", {"a.txt": b"1\n"}, "t", "body")
    second = pub.open_or_update_sync_pr(c, "acme/d", {"a.txt": b"2\n"}, "t", "body")
    assert (first.action, second.action) == ("created", "updated")
    assert first.pr_number == second.pr_number
    assert len(emu.state.repo("acme", "d").pulls) == 1
    # a PR opened behind mlgen's back is found through the 422 and updated
    repo = c.repo("acme/d")
    pr, action = pub.open_or_update_pr(c, repo, branch="mlgen/sync", base="main", title="x",
                                      body="y", known_absent=True)
    assert action == "updated" and pr.number == first.pr_number


def test_retries_5xx_and_secondary_limit(emu: Emulator) -> None:
    emu.add_repo("acme/f", {"mlgen.yaml": "name: f\n"})
    c = client(emu)
    emu.faults(fail_5xx=2)
    assert gh.read_tree(c, c.repo("acme/f")).blob_sha("mlgen.yaml")
    emu.reset_counts()
    emu.faults(secondary_limit=1, retry_after=1)
    assert gh.read_tree(c, c.repo("acme/f")).blob_sha("mlgen.yaml")
    assert emu.counts() == {"GET": 2}  # the limited call, then its retry after Retry-After
    emu.faults(fail_5xx=50)
    with pytest.raises(gh.GitHubError) as err:
        gh.read_tree(client(emu, retries=1), c.repo("acme/f"))
    assert DEFAULT_TOKEN not in str(err.value) and "gave up" in str(err.value)
    emu.faults(fail_5xx=0)


def test_comment_upsert_ignores_spoofed_marker(emu: Emulator, tmp_path: Path) -> None:
    emu.add_repo("acme/c", {"mlgen.yaml": "name: c\n"}, permissions={"mallory": "read"})
    emu.add_user("mallory", "mallory-token")
    c = client(emu)
    pr = pub.open_or_update_sync_pr(c, "acme/c", {"x": b"1"}, "t", "b")
    marker = "<!-- mlgen:pr-report -->"
    fake = gh.upsert_comment(client(emu, "mallory-token"), "acme/c", pr.pr_number, marker, "fake")
    action, cid = gh.upsert_comment(c, "acme/c", pr.pr_number, marker, "real")
    assert action == "created" and cid != fake[1]
    assert gh.upsert_comment(c, "acme/c", pr.pr_number, marker, "real") == ("unchanged", cid)
    assert gh.upsert_comment(c, "acme/c", pr.pr_number, marker, "new")[0] == "updated"
    mine = [x for x in emu.state.repo("acme", "c").comments if x["user"] == "mlgen-bot"]
    assert len(mine) == 1 and mine[0]["body"].endswith("new")

    (tmp_path / "reports" / "gate").mkdir(parents=True)
    (tmp_path / "reports" / "gate" / "gate.md").write_text("| roc_auc | 0.81 | ✅ |\n")
    env = {"GITHUB_TOKEN": DEFAULT_TOKEN, "GITHUB_API_URL": emu.url, "GITHUB_REPOSITORY": "acme/c"}
    dry = CliRunner().invoke(cli, ["-C", str(tmp_path), "comment", "--pr", str(pr.pr_number),
                                   "--dry-run"], env=env)
    assert dry.exit_code == 0 and "roc_auc" in dry.output and "### Drift" not in dry.output
    real = CliRunner().invoke(cli, ["-C", str(tmp_path), "comment", "--pr", str(pr.pr_number)],
                              env=env)
    assert real.exit_code == 0, real.output
    assert DEFAULT_TOKEN not in real.output
    bodies = [x["body"] for x in emu.state.repo("acme", "c").comments if x["user"] == "mlgen-bot"]
    assert len(bodies) == 1 and "roc_auc" in bodies[0]


def test_dispatch_and_permission(emu: Emulator) -> None:
    emu.add_repo("acme/r", {"mlgen.yaml": "name: r\n"}, permissions={"dev": "write",
                                                                     "guest": "read"})
    env = {"GITHUB_TOKEN": DEFAULT_TOKEN, "GITHUB_API_URL": emu.url}
    result = CliRunner().invoke(cli, ["github", "dispatch", "--repo", "acme/r", "--workflow",
                                      "retrain.yml", "--ref", "main", "-f", "reason=drift",
                                      "-f", "window=24h"], env=env)
    assert result.exit_code == 0, result.output
    assert emu.state.repo("acme", "r").dispatches == [{
        "workflow": "retrain.yml", "ref": "main", "user": "mlgen-bot",
        "inputs": {"reason": "drift", "window": "24h"}}]
    bad = CliRunner().invoke(cli, ["github", "dispatch", "--repo", "acme/r", "--workflow",
                                   "x.yml", "--ref", "nope"], env=env)
    assert bad.exit_code == 1 and "422" in str(bad.exception)
    c = client(emu)
    assert gh.can_write(c, "acme/r", "dev") and not gh.can_write(c, "acme/r", "guest")


def test_real_templates_render_remotely(emu: Emulator) -> None:
    if not EXAMPLE.is_file():
        pytest.skip(f"{EXAMPLE} missing")
    from mlgen.publish.github.sync_pr import plan_remote, render_remote

    emu.add_repo("bank-ml/credit-risk", {"mlgen.yaml": EXAMPLE.read_text()})
    plan = plan_remote(client(emu), "bank-ml/credit-risk")
    assert "Jenkinsfile" in plan.changes and plan.default_branch == "main"
    lock = plan.changes.pop(".mlgen/lock.json")
    assert plan.changes == render_remote(EXAMPLE.read_text())
    assert lock is not None and b'"Jenkinsfile"' in lock  # the merge base of the next sync


@pytest.mark.parametrize("snapshot", [False, True], ids=["rest", "graphql-snapshot"])
def test_leftover_sync_branch_is_reused_only_when_mlgen_made_its_head(emu: Emulator,
                                                                      snapshot: bool) -> None:
    from mlgen.integrations.github.graphql import read_snapshot

    emu.add_repo("acme/l", {"mlgen.yaml": "name: l\n"})
    c = client(emu)
    repo = c.repo("acme/l")

    def sync(data: bytes) -> pub.SyncResult:
        # with a snapshot, what the branch holds is known before any write (no read on 422)
        snap = read_snapshot(c, "acme/l", spec_path="mlgen.yaml", lock_path=".mlgen/lock.json",
                             sync_branch="mlgen/sync") if snapshot else None
        emu.reset_counts()
        out = pub.open_or_update_sync_pr(c, "acme/l", {"a.txt": data}, "mlgen sync", "body",
                                        snapshot=snap)
        if snapshot:
            assert "GET" not in emu.counts(), emu.counts()
        return out

    first = sync(b"1\n")
    repo.get_pull(first.pr_number).edit(state="closed")  # closed, branch not deleted
    # Only mlgen's own commit on the leftover branch: a new sync may move it and open a PR.
    second = sync(b"2\n")
    assert second.action == "created" and second.pr_number != first.pr_number
    repo.get_pull(second.pr_number).edit(state="closed")
    # Someone pushes their own commit to the leftover branch: mlgen must not force it away.
    head = repo.get_git_ref("heads/mlgen/sync").object.sha
    tree = repo.get_git_commit(head).tree
    theirs = repo.create_git_commit("hand-made fix", tree, [repo.get_git_commit(head)])
    c.gh.requester.requestJsonAndCheck("PATCH", f"{repo.url}/git/refs/heads/mlgen/sync",
                                       input={"sha": theirs.sha, "force": True})
    with pytest.raises(gh.GitHubError) as info:
        sync(b"3\n")
    assert info.value.status == 409 and "did not make" in str(info.value)
    assert repo.get_git_ref("heads/mlgen/sync").object.sha == theirs.sha
