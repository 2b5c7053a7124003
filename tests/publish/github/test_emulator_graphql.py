"""The emulator's GraphQL endpoint, driven by the real PyGithub requester.

Every query is first checked against GitHub's published schema (npm @octokit/graphql-schema),
so the query remote sync sends is one github.com accepts; the answers are then compared with
what git itself says about the emulator's bare repositories."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import github
import pytest
from github import Auth, Github, InputGitTreeElement
from mlgen.integrations.github.graphql import snapshot_query

from tests.emulators.github import DEFAULT_TOKEN, Emulator

graphql = pytest.importorskip("graphql", reason="graphql-core is in the dev extra")

from tests.emulators.github_graphql import (
    BLOB_TEXT_LIMIT,
    GRAPHQL_SCHEMA_ENV,
    graphql_schema_path,
    load_graphql_schema,
)

pytestmark = pytest.mark.skipif(
    not graphql_schema_path().is_file(),
    reason=f"{graphql_schema_path()} not found: run scripts/install-tools.sh")

REPO = "acme/credit-risk"
SPEC = "name: credit-risk\nport: 8080\n"
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff"
SYNC_MESSAGE = "mlgen: sync generated files\n\nmlgen-sync: v1\n"
PULL_FIELDS = "number url title body baseRefName headRefName headRefOid state author { login }"


# One emulator for the module: every query here only reads (faults are used up by their test).
@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        emulator.add_repo(REPO, {"mlgen.yaml": SPEC, "models/logo.png": BINARY,
                                 "big.txt": "é" * BLOB_TEXT_LIMIT})
        yield emulator


@pytest.fixture(scope="module")
def gh(emu: Emulator) -> Iterator[Github]:
    # No retries: a fault must reach the test as the status the emulator answered. No pacing:
    # PyGithub waits a second between writes by default, and a GraphQL POST counts as one.
    client = Github(auth=Auth.Token(DEFAULT_TOKEN), base_url=emu.url, retry=None,
                    seconds_between_requests=None, seconds_between_writes=None)
    yield client
    client.close()


def rev_parse(emu: Emulator, rev: str) -> str:
    return subprocess.run(["git", "--git-dir", str(emu.repo_path(REPO)), "rev-parse", rev],
                          capture_output=True, text=True, check=True).stdout.strip()


def query(gh: Github, text: str, **variables: Any) -> dict[str, Any]:
    _headers, answer = gh.requester.graphql_query(text, variables)
    assert "errors" not in answer
    data: dict[str, Any] = answer["data"]
    return data


def snapshot_variables(**extra: str) -> dict[str, str]:
    owner, name = REPO.split("/")
    return {"owner": owner, "name": name, "spec": "mlgen.yaml", "lock": "mlgen.sync.lock",
            "sync": "refs/heads/mlgen/sync", **extra}


@pytest.fixture(scope="module")
def synced(emu: Emulator, gh: Github) -> dict[str, int]:
    """mlgen/sync one commit ahead of main, an open PR into main and a closed one into release,
    all made over REST as mlgen makes them."""
    repo = gh.get_repo(REPO)
    main = repo.get_git_commit(rev_parse(emu, "main"))
    tree = repo.create_git_tree(
        [InputGitTreeElement("Dockerfile", "100644", "blob", content="FROM python:3.12\n")],
        base_tree=repo.get_git_tree(main.tree.sha))
    commit = repo.create_git_commit(SYNC_MESSAGE, tree, [main])
    repo.create_git_ref("refs/heads/mlgen/sync", commit.sha)
    repo.create_git_ref("refs/heads/release", main.sha)
    closed = repo.create_pull(base="release", head="mlgen/sync", title="old", body="stale")
    closed.edit(state="closed")
    open_pull = repo.create_pull(base="main", head="mlgen/sync", title="mlgen sync",
                                 body="Regenerated.")
    return {"open": open_pull.number, "closed": closed.number}


@pytest.mark.parametrize("kind", ["default", "branch", "commit"])
def test_snapshot_queries_are_valid_for_githubs_schema(kind: str) -> None:
    errors = graphql.validate(load_graphql_schema(), graphql.parse(snapshot_query(kind)))
    assert errors == []


def test_schema_catches_a_field_github_does_not_have() -> None:
    # the check above can fail: a misspelt field is reported by the same validation
    bad = snapshot_query("default").replace("headRefOid", "headRefSha")
    errors = graphql.validate(load_graphql_schema(), graphql.parse(bad))
    assert len(errors) == 1
    assert errors[0].message.startswith("Cannot query field 'headRefSha' on type 'PullRequest'.")


@pytest.mark.parametrize("kind", ["default", "branch", "commit"])
def test_snapshot_matches_git(emu: Emulator, gh: Github, synced: dict[str, int],
                              kind: str) -> None:
    extra = {"default": {}, "branch": {"branch": "refs/heads/main"},
             "commit": {"oid": rev_parse(emu, "main")}}[kind]
    repo = query(gh, snapshot_query(kind), **snapshot_variables(**extra))["repository"]
    base = repo["base"]
    commit = base if kind == "commit" else base["target"]
    if kind != "commit":
        assert base["name"] == "main"
    assert commit["oid"] == rev_parse(emu, "main")
    assert commit["tree"]["oid"] == rev_parse(emu, "main^{tree}")
    assert commit["spec"] == {"oid": rev_parse(emu, "main:mlgen.yaml"), "object": {
        "text": SPEC, "isBinary": False, "isTruncated": False}}
    assert commit["lock"] is None

    sync = repo["sync"]
    assert sync["target"] == {"oid": rev_parse(emu, "mlgen/sync"), "message": SYNC_MESSAGE}
    head = rev_parse(emu, "mlgen/sync")
    assert sync["associatedPullRequests"]["nodes"] == [{
        "number": synced["open"], "url": gh.get_repo(REPO).get_pull(synced["open"]).html_url,
        "title": "mlgen sync", "body": "Regenerated.", "baseRefName": "main",
        "headRefOid": head}]


def test_missing_branch_sync_ref_and_commit_are_null(emu: Emulator, gh: Github) -> None:
    branch = query(gh, snapshot_query("branch"),
                   **snapshot_variables(branch="refs/heads/nope", sync="refs/heads/no-sync")
                   )["repository"]
    assert branch == {"base": None, "sync": None}
    commit = query(gh, snapshot_query("commit"), **snapshot_variables(oid="1" * 40))
    assert commit["repository"]["base"] is None


def test_pull_request_states_and_fields(emu: Emulator, gh: Github,
                                        synced: dict[str, int]) -> None:
    text = f"""query($owner: String!, $name: String!) {{
      repository(owner: $owner, name: $name) {{
        short: ref(qualifiedName: "mlgen/sync") {{
          name prefix
          closed: associatedPullRequests(states: [CLOSED], first: 10) {{
            totalCount nodes {{ {PULL_FIELDS} }} }}
          all: associatedPullRequests(first: 1) {{ totalCount nodes {{ number }} }}
        }}
        main: ref(qualifiedName: "refs/heads/main") {{
          associatedPullRequests(first: 10) {{ totalCount }} }}
      }}
    }}"""
    repo = query(gh, text, owner="acme", name="credit-risk")
    ref = repo["repository"]["short"]
    assert (ref["name"], ref["prefix"]) == ("mlgen/sync", "refs/heads/")
    assert ref["closed"] == {"totalCount": 1, "nodes": [{
        "number": synced["closed"], "url": gh.get_repo(REPO).get_pull(synced["closed"]).html_url,
        "title": "old", "body": "stale", "baseRefName": "release", "headRefName": "mlgen/sync",
        "headRefOid": rev_parse(emu, "mlgen/sync"), "state": "CLOSED",
        "author": {"login": "mlgen-bot"}}]}
    assert ref["all"] == {"totalCount": 2, "nodes": [{"number": synced["closed"]}]}
    assert repo["repository"]["main"]["associatedPullRequests"] == {"totalCount": 0}


def test_tree_entries_and_objects(emu: Emulator, gh: Github) -> None:
    text = """query($owner: String!, $name: String!) {
      repository(owner: $owner, name: $name) {
        nameWithOwner name
        defaultBranchRef { target { ... on Commit {
          dir: file(path: "models") { name path mode type object { __typename oid } }
          png: file(path: "models/logo.png") {
            name path mode type object { ... on Blob { text isBinary byteSize } } }
          parents(first: 5) { totalCount nodes { oid } } } } }
        byExpression: object(expression: "HEAD:mlgen.yaml") { ... on Blob { text } }
        missing: object(expression: "main:nope.txt") { oid }
      }
    }"""
    repo = query(gh, text, owner="acme", name="credit-risk")["repository"]
    assert (repo["nameWithOwner"], repo["name"]) == (REPO, "credit-risk")
    commit = repo["defaultBranchRef"]["target"]
    assert commit["dir"] == {"name": "models", "path": "models", "mode": 0o40000, "type": "tree",
                             "object": {"__typename": "Tree",
                                        "oid": rev_parse(emu, "main:models")}}
    assert commit["png"] == {"name": "logo.png", "path": "models/logo.png", "mode": 33188,
                             "type": "blob", "object": {"text": None, "isBinary": True,
                                                        "byteSize": len(BINARY)}}
    assert commit["parents"] == {"totalCount": 0, "nodes": []}
    assert repo["byExpression"] == {"text": SPEC}
    assert repo["missing"] is None


def test_text_over_the_limit_is_truncated(emu: Emulator, gh: Github) -> None:
    text = """query {
      repository(owner: "acme", name: "credit-risk") {
        object(expression: "main:big.txt") {
          ... on Blob { text isTruncated isBinary byteSize } } } }"""
    blob = query(gh, text)["repository"]["object"]
    assert blob["isTruncated"] is True and blob["isBinary"] is False
    assert blob["byteSize"] == 2 * BLOB_TEXT_LIMIT  # "é" is two bytes in UTF-8
    assert blob["text"] == "é" * (BLOB_TEXT_LIMIT // 2)


def test_missing_repository_is_unknown_object(gh: Github) -> None:
    with pytest.raises(github.UnknownObjectException) as raised:
        gh.requester.graphql_query(snapshot_query("default"),
                                   snapshot_variables(name="no-such-repo"))
    assert raised.value.status == 404
    assert raised.value.data["errors"] == [{
        "message": "Could not resolve to a Repository with the name 'acme/no-such-repo'.",
        "locations": [{"line": 2, "column": 3}], "path": ["repository"], "type": "NOT_FOUND"}]
    assert raised.value.data["data"] == {"repository": None}


def test_unknown_field_is_a_validation_error(gh: Github) -> None:
    with pytest.raises(github.GithubException) as raised:
        gh.requester.graphql_query('{ repository(owner: "acme", name: "credit-risk") '
                                   "{ defaultBranch } }", {})
    assert "data" not in raised.value.data
    [error] = raised.value.data["errors"]
    assert error["message"].startswith("Cannot query field 'defaultBranch' on type 'Repository'")
    assert error["locations"] == [{"line": 1, "column": 52}]


def test_field_not_emulated_fails_loudly(gh: Github) -> None:
    # Repository.description is in GitHub's schema; the emulator does not fill it
    with pytest.raises(github.GithubException) as raised:
        gh.requester.graphql_query('{ repository(owner: "acme", name: "credit-risk") '
                                   "{ name description } }", {})
    assert [e["message"] for e in raised.value.data["errors"]] == [
        "field Repository.description is not emulated"]


def test_mutation_is_refused(gh: Github) -> None:
    with pytest.raises(github.GithubException) as raised:
        gh.requester.graphql_query(
            'mutation { addStar(input: {starrableId: "R_1"}) { clientMutationId } }', {})
    assert [e["message"] for e in raised.value.data["errors"]] == ["mutations are not emulated"]


def test_connection_needs_first_or_last(gh: Github) -> None:
    with pytest.raises(github.GithubException) as raised:
        gh.requester.graphql_query(
            '{ repository(owner: "acme", name: "credit-risk") '
            "{ defaultBranchRef { associatedPullRequests { totalCount } } } }",
            {},
        )
    assert "`first` or `last`" in raised.value.data["errors"][0]["message"]


def test_a_query_counts_as_graphql_not_as_a_write(emu: Emulator, gh: Github) -> None:
    emu.reset_counts()
    headers, _answer = gh.requester.graphql_query(snapshot_query("default"), snapshot_variables())
    assert emu.counts() == {"GRAPHQL": 1}
    assert emu.state.route_counts == {"POST /graphql": 1}
    assert headers["x-ratelimit-resource"] == "graphql"


def test_faults_apply_to_graphql(emu: Emulator, gh: Github) -> None:
    try:
        emu.faults(fail_5xx=1, match=r"^POST /graphql$")
        with pytest.raises(github.GithubException) as failed:
            gh.requester.graphql_query(snapshot_query("default"), snapshot_variables())
        assert failed.value.status == 502

        emu.faults(secondary_limit=1, retry_after=7)
        with pytest.raises(github.GithubException) as limited:
            gh.requester.graphql_query(snapshot_query("default"), snapshot_variables())
        assert limited.value.status == 403
        assert limited.value.headers is not None and limited.value.headers["retry-after"] == "7"
    finally:
        emu.faults(fail_5xx=0, secondary_limit=0, match="")

    # the faults are used up: the same query now answers
    assert query(gh, snapshot_query("default"), **snapshot_variables())["repository"]["base"]


def test_bad_token_is_401(emu: Emulator) -> None:
    client = Github(auth=Auth.Token("not-a-token"), base_url=emu.url, retry=None,
                    seconds_between_requests=None, seconds_between_writes=None)
    with pytest.raises(github.BadCredentialsException):
        client.requester.graphql_query(snapshot_query("default"), snapshot_variables())
    client.close()


def test_missing_schema_names_the_file(gh: Github, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "schema.json"
    monkeypatch.setenv(GRAPHQL_SCHEMA_ENV, str(missing))
    with pytest.raises(github.GithubException) as raised:
        gh.requester.graphql_query(snapshot_query("default"), snapshot_variables())
    assert raised.value.status == 500
    assert str(missing) in raised.value.data["message"]
    assert "scripts/install-tools.sh" in raised.value.data["message"]
