"""The GraphQL snapshot answer is taken at its word only where it can be checked: file text is
used only when its git blob SHA is the entry's, a missing branch or a non-commit target is an
error, and the open sync PR into the right base is chosen. (The queries themselves are checked
against GitHub's published schema and run against the emulator in test_emulator_graphql.py.)"""
from __future__ import annotations

import hashlib
from typing import Any

import pytest
from mlgen.integrations.github.graphql import parse_snapshot, snapshot_query


def oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def entry(content: str, **blob: Any) -> dict[str, Any]:
    return {"oid": oid(content.encode()), "object": {"text": content, "isBinary": False,
                                                     "isTruncated": False, **blob}}


def answer(base: Any, sync: Any = None) -> dict[str, Any]:
    return {"repository": {"base": base, "sync": sync}}


def commit(**files: Any) -> dict[str, Any]:
    return {"oid": "c" * 40, "tree": {"oid": "t" * 40}, **files}


def test_text_is_used_only_when_it_hashes_to_the_blob() -> None:
    good = entry("name: m\r\n")  # CRLF kept byte for byte
    rewritten = {**entry("x: 1\n"), "oid": oid(b"x: 1\r\n")}  # a server that rewrote newlines
    snap = parse_snapshot(answer({"name": "main", "target": commit(spec=good, lock=rewritten)}),
                          "mlgen.yaml", ".mlgen/lock.json")
    assert snap is not None and snap.branch == "main" and snap.commit == "c" * 40
    assert snap.files["mlgen.yaml"].data == b"name: m\r\n"
    assert snap.files[".mlgen/lock.json"].data is None  # read over REST instead
    assert snap.files[".mlgen/lock.json"].sha == oid(b"x: 1\r\n")


@pytest.mark.parametrize("blob", [{"isTruncated": True}, {"isBinary": True, "text": None}])
def test_truncated_or_binary_text_is_fetched_instead(blob: dict[str, Any]) -> None:
    snap = parse_snapshot(answer({"name": "main", "target": commit(spec=entry("a\n", **blob))}),
                          "mlgen.yaml", "lock")
    assert snap is not None and snap.files["mlgen.yaml"].data is None
    assert "lock" not in snap.files  # absent file: not in the snapshot at all


def test_missing_branch_or_tag_target_gives_none() -> None:
    assert parse_snapshot(answer(None), "s", "l") is None
    assert parse_snapshot(answer({"name": "v1", "target": {"oid": "a" * 40}}), "s", "l") is None


def test_commit_by_sha_has_no_branch_and_pr_base_is_matched() -> None:
    pulls = [{"number": n, "url": f"u{n}", "title": "t", "body": None, "headRefOid": "h" * 40,
              "baseRefName": base} for n, base in ((4, "release"), (7, "main"))]
    snap = parse_snapshot(answer(commit(), {"target": {"oid": "h" * 40, "message": "mlgen"},
                                            "associatedPullRequests": {"nodes": pulls}}),
                          "s", "l")
    assert snap is not None and snap.branch is None and snap.sync_head == "h" * 40
    assert snap.sync_head_message == "mlgen"
    pull = snap.open_pull("main")
    assert pull is not None and pull.number == 7 and pull.body == ""
    assert snap.open_pull(None) is not None and snap.open_pull("develop") is None


def test_each_query_names_only_the_variables_it_uses() -> None:
    assert "$oid" in snapshot_query("commit") and "$branch" not in snapshot_query("commit")
    assert "defaultBranchRef" in snapshot_query("default")
    assert "ref(qualifiedName: $branch)" in snapshot_query("branch")
