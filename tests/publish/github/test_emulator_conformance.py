"""The GitHub emulator answers as GitHub documents: status codes and bodies are checked against
the operations' response schemas in GitHub's own OpenAPI description (a subset vendored in
tests/reference/), and its webhook payloads against GitHub's webhook schemas. Tests that
pass against the emulator then say something about github.com."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.emulators.github import DEFAULT_TOKEN, Emulator
from tests.helpers import REPO as REPO_ROOT

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra")

REFERENCE = REPO_ROOT / "tests" / "reference"  # vendored, see its README.md
OPENAPI = REFERENCE / "github-openapi-subset.json"
WEBHOOKS = REFERENCE / "github-webhooks-subset.json"

class Spec:
    def __init__(self) -> None:
        self.doc = json.loads(OPENAPI.read_text())
        self.ops: list[tuple[str, re.Pattern[str], dict[str, Any]]] = []
        for path, ops in self.doc["paths"].items():
            # {ref} and {path} may hold slashes; other parameters are one segment
            regex = re.sub(r"\{(ref|path|branch)\}", r"(.+)", path)
            regex = re.sub(r"\{[^}]+\}", r"[^/]+", regex)
            for method, op in ops.items():
                if isinstance(op, dict) and "responses" in op:
                    self.ops.append((method.upper(), re.compile(f"^{regex}$"), op))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        matches = [op for m, rx, op in self.ops if m == method and rx.match(path)]
        assert matches, f"{method} {path} is not an operation of the reference subset"
        # the most specific path wins (…/git/ref/{ref} before a catch-all)
        return matches[0]

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        op = self.operation(method, path)
        responses = op["responses"]
        assert str(status) in responses, (
            f"{op['operationId']}: status {status} not documented ({sorted(responses)})")
        schema = responses[str(status)].get("content", {}).get("application/json", {}).get(
            "schema")
        if schema is None:
            assert body in (None, b"", ""), f"{op['operationId']} {status} must have no body"
            return
        _validate(schema, body, op["operationId"])


def _to_jsonschema(schema: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` -> JSON Schema's type list, recursively."""
    if isinstance(schema, dict):
        out = {k: _to_jsonschema(v) for k, v in schema.items() if k != "nullable"}
        if schema.get("nullable"):
            if "type" in out:
                out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [
                    *out["type"], "null"]
            elif "enum" not in out:
                out = {"anyOf": [out, {"type": "null"}]}
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(schema, list):
        return [_to_jsonschema(v) for v in schema]
    return schema


def _validate(schema: Any, body: Any, name: str) -> None:
    validator = jsonschema.Draft4Validator(_to_jsonschema(schema),
                                           format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message[:200]}" for e in errors[:5])


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec()


@pytest.fixture()
def emu() -> Any:
    with Emulator() as emulator:
        emulator.add_repo("acme/model", {"mlgen.yaml": "name: model\n", "src/app.py": "x = 1\n"},
                          topics=["mlgen"], permissions={"dev": "write", "guest": "read"})
        yield emulator


class Client:
    def __init__(self, emu: Emulator, spec: Spec) -> None:
        self.emu, self.spec = emu, spec
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {DEFAULT_TOKEN}"

    def call(self, method: str, path: str, body: Any = None, expect: int | None = None,
             **params: Any) -> Any:
        resp = self.session.request(method, self.emu.url + path, json=body, params=params)
        data = resp.json() if resp.content else None
        if expect is not None:
            assert resp.status_code == expect, (method, path, resp.status_code, data)
        if resp.status_code < 400:
            self.spec.check(method, path, resp.status_code, data)
        else:
            # errors carry GitHub's basic-error shape
            assert isinstance(data, dict) and "message" in data
            op = self.spec.operation(method, path)
            if str(resp.status_code) in op["responses"]:
                self.spec.check(method, path, resp.status_code, data)
        return data


def test_git_data_round_trip_validates_and_matches_git(emu: Emulator, spec: Spec) -> None:
    c = Client(emu, spec)
    R = "/repos/acme/model"
    repo = c.call("GET", R, expect=200)
    assert repo["default_branch"] == "main"
    tree = c.call("GET", f"{R}/git/trees/HEAD", recursive="1", expect=200)
    paths = {e["path"]: e for e in tree["tree"]}
    assert set(paths) == {"mlgen.yaml", "src", "src/app.py"}
    data = b"name: model\n"
    assert paths["mlgen.yaml"]["sha"] == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    blob = c.call("GET", f"{R}/git/blobs/{paths['mlgen.yaml']['sha']}", expect=200)
    assert base64.b64decode(blob["content"]) == data
    new_blob = c.call("POST", f"{R}/git/blobs", {"content": "a\n", "encoding": "utf-8"},
                      expect=201)
    ref = c.call("GET", f"{R}/git/ref/heads/main", expect=200)
    commit = c.call("GET", f"{R}/git/commits/{ref['object']['sha']}", expect=200)
    new_tree = c.call("POST", f"{R}/git/trees", {"base_tree": commit["tree"]["sha"], "tree": [
        {"path": "a.txt", "mode": "100644", "type": "blob", "sha": new_blob["sha"]},
        {"path": "src/app.py", "mode": "100644", "type": "blob", "sha": None}]}, expect=201)
    new_commit = c.call("POST", f"{R}/git/commits", {"message": "m", "tree": new_tree["sha"],
                                                      "parents": [commit["sha"]]}, expect=201)
    c.call("POST", f"{R}/git/refs", {"ref": "refs/heads/topic", "sha": new_commit["sha"]},
           expect=201)
    c.call("POST", f"{R}/git/refs", {"ref": "refs/heads/topic", "sha": new_commit["sha"]},
           expect=422)
    c.call("PATCH", f"{R}/git/refs/heads/topic", {"sha": new_commit["sha"], "force": True},
           expect=200)
    c.call("GET", f"{R}/branches/topic", expect=200)
    c.call("GET", f"{R}/git/ref/heads/nope", expect=404)
    c.call("GET", f"{R}/git/trees/{'0' * 40}", expect=404)
    c.call("DELETE", f"{R}/git/refs/heads/topic", expect=204)


def test_pulls_comments_and_the_rest_validate(emu: Emulator, spec: Spec) -> None:
    c = Client(emu, spec)
    R = "/repos/acme/model"
    main = c.call("GET", f"{R}/git/ref/heads/main")["object"]["sha"]
    tree = c.call("POST", f"{R}/git/trees", {"base_tree": c.call(
        "GET", f"{R}/git/commits/{main}")["tree"]["sha"], "tree": [
        {"path": "Jenkinsfile", "mode": "100644", "type": "blob", "content": "x\n"}]})
    head = c.call("POST", f"{R}/git/commits", {"message": "m", "tree": tree["sha"],
                                                "parents": [main]})
    c.call("POST", f"{R}/git/refs", {"ref": "refs/heads/mlgen/sync", "sha": head["sha"]})
    pr = c.call("POST", f"{R}/pulls", {"title": "t", "head": "mlgen/sync", "base": "main"},
                expect=201)
    dup = c.call("POST", f"{R}/pulls", {"title": "t", "head": "mlgen/sync", "base": "main"},
                 expect=422)
    assert "already exists" in dup["errors"][0]["message"]
    listed = c.call("GET", f"{R}/pulls", expect=200, head="acme:mlgen/sync", state="open")
    assert [p["number"] for p in listed] == [pr["number"]]
    c.call("GET", f"{R}/pulls/{pr['number']}", expect=200)
    c.call("PATCH", f"{R}/pulls/{pr['number']}", {"body": "b"}, expect=200)
    files = c.call("GET", f"{R}/pulls/{pr['number']}/files", expect=200)
    assert [(f["filename"], f["status"]) for f in files] == [("Jenkinsfile", "added")]
    comment = c.call("POST", f"{R}/issues/{pr['number']}/comments", {"body": "hi"}, expect=201)
    c.call("GET", f"{R}/issues/{pr['number']}/comments", expect=200)
    c.call("PATCH", f"{R}/issues/comments/{comment['id']}", {"body": "ho"}, expect=200)
    c.call("DELETE", f"{R}/issues/comments/{comment['id']}", expect=204)
    c.call("POST", f"{R}/actions/workflows/retrain.yml/dispatches",
           {"ref": "main", "inputs": {"reason": "drift"}}, expect=204)
    c.call("POST", f"{R}/statuses/{head['sha']}", {"state": "success", "context": "mlgen"},
           expect=201)
    c.call("GET", "/user", expect=200)
    c.call("GET", "/rate_limit", expect=200)
    c.call("GET", "/orgs/acme/repos", expect=200)
    found = c.call("GET", "/search/repositories", expect=200, q="org:acme topic:mlgen")
    assert found["total_count"] == 1


def test_faults_look_like_github(emu: Emulator, spec: Spec) -> None:
    c = Client(emu, spec)
    emu.faults(secondary_limit=1, retry_after=7)
    resp = requests.get(emu.url + "/repos/acme/model",
                        headers={"Authorization": f"token {DEFAULT_TOKEN}"})
    assert resp.status_code == 403 and resp.headers["Retry-After"] == "7"
    assert "secondary rate limit" in resp.json()["message"]
    spec.check("GET", "/repos/acme/model", 403, resp.json())
    emu.faults(rate_limit_remaining=1, rate_limit_reset=1_900_000_000)
    ok = requests.get(emu.url + "/repos/acme/model",
                      headers={"Authorization": f"token {DEFAULT_TOKEN}"})
    assert ok.status_code == 200 and ok.headers["X-RateLimit-Remaining"] == "0"
    limited = requests.get(emu.url + "/repos/acme/model",
                           headers={"Authorization": f"token {DEFAULT_TOKEN}"})
    assert limited.status_code == 403 and limited.headers["X-RateLimit-Reset"] == "1900000000"
    emu.faults(rate_limit_remaining=None)
    bad = requests.get(emu.url + "/user", headers={"Authorization": "token wrong"})
    assert bad.status_code == 401
    spec.check("GET", "/user", 401, bad.json())
    assert c.emu.counts()["GET"] >= 4


class _Sink(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def webhook_sink() -> Iterator[str]:
    """A local receiver for the emulator's webhook deliveries (collected in _Sink.received)."""
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    _Sink.received = []
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{sink.server_address[1]}/"
    finally:
        sink.shutdown()
        sink.server_close()


def _deliveries(count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
    """Wait until `count` deliveries arrived (or the timeout passed), then return them."""
    deadline = time.monotonic() + timeout
    while len(_Sink.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(_Sink.received)


def test_webhook_payloads_validate_and_are_signed(emu: Emulator, webhook_sink: str) -> None:
    hooks = json.loads(WEBHOOKS.read_text())["webhooks"]
    emu.add_hook(webhook_sink, "s3cret")
    c = requests.Session()
    c.headers["Authorization"] = f"token {DEFAULT_TOKEN}"
    R = emu.url + "/repos/acme/model"
    main = c.get(R + "/git/ref/heads/main").json()["object"]["sha"]
    c.post(R + "/git/refs", json={"ref": "refs/heads/feature", "sha": main})
    pr = c.post(R + "/pulls", json={"title": "t", "head": "feature", "base": "main"}).json()
    tree = c.get(R + f"/git/commits/{main}").json()["tree"]["sha"]
    t2 = c.post(R + "/git/trees", json={"base_tree": tree, "tree": [
        {"path": "f", "mode": "100644", "type": "blob", "content": "1"}]}).json()
    c2 = c.post(R + "/git/commits", json={"message": "m", "tree": t2["sha"],
                                           "parents": [main]}).json()
    c.patch(R + "/git/refs/heads/feature", json={"sha": c2["sha"]})
    c.post(R + f"/issues/{pr['number']}/comments", json={"body": "/mlgen sync"})
    c.patch(R + f"/pulls/{pr['number']}", json={"state": "closed"})
    c.patch(R + f"/pulls/{pr['number']}", json={"state": "open"})
    seen = set()
    for headers, body in _deliveries(4):
        payload = json.loads(body)
        event = headers["x-github-event"]
        name = f"{event.replace('_', '-')}-{payload['action']}"
        seen.add(name)
        digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == f"sha256={digest}"
        schema = hooks[name]["post"]["requestBody"]["content"]["application/json"]["schema"]
        _validate(schema, payload, name)
    assert seen == {"pull-request-opened", "pull-request-synchronize",
                    "issue-comment-created", "pull-request-reopened"}


def test_fork_pull_requests_validate_and_reach_the_base_repository(
        emu: Emulator, spec: Spec, webhook_sink: str) -> None:
    """A PR from a fork: the head side names the fork (fork: true), its head commit is kept
    in the base repository as refs/pull/N/head, and pushes to the fork fire `synchronize`."""
    hooks = json.loads(WEBHOOKS.read_text())["webhooks"]
    emu.add_hook(webhook_sink, "s3cret")
    emu.add_fork("acme/model", "contrib/model")
    emu.add_user("contrib", "contrib-token")
    c = Client(emu, spec)
    c.session.headers["Authorization"] = "token contrib-token"
    F = "/repos/contrib/model"
    fork = c.call("GET", F, expect=200)
    assert fork["fork"] is True and fork["parent"]["full_name"] == "acme/model"
    assert fork["source"]["full_name"] == "acme/model"
    main = c.call("GET", f"{F}/git/ref/heads/main")["object"]["sha"]
    tree = c.call("POST", f"{F}/git/trees", {"base_tree": c.call(
        "GET", f"{F}/git/commits/{main}")["tree"]["sha"], "tree": [
        {"path": "Jenkinsfile", "mode": "100644", "type": "blob", "content": "x\n"}]})
    head = c.call("POST", f"{F}/git/commits", {"message": "m", "tree": tree["sha"],
                                                "parents": [main]})
    c.call("POST", f"{F}/git/refs", {"ref": "refs/heads/patch", "sha": head["sha"]},
           expect=201)
    R = "/repos/acme/model"
    pr = c.call("POST", f"{R}/pulls", {"title": "t", "head": "contrib:patch",
                                       "base": "main"}, expect=201)
    assert pr["head"]["repo"]["full_name"] == "contrib/model"
    assert pr["head"]["repo"]["fork"] is True and pr["head"]["label"] == "contrib:patch"
    assert pr["base"]["repo"]["full_name"] == "acme/model"
    base_git = emu.state.repo("acme", "model").git
    assert base_git.resolve(f"refs/pull/{pr['number']}/head") == head["sha"]
    assert base_git.resolve("refs/heads/patch") is None  # the branch stays in the fork
    listed = c.call("GET", f"{R}/pulls", expect=200, head="contrib:patch")
    assert [p["number"] for p in listed] == [pr["number"]]
    assert c.call("GET", f"{R}/pulls", expect=200, head="acme:patch") == []
    files = c.call("GET", f"{R}/pulls/{pr['number']}/files", expect=200)
    assert [f["filename"] for f in files] == ["Jenkinsfile"]
    # the fork's owner may not write to the base repository
    c.call("POST", f"{R}/git/refs", {"ref": "refs/heads/x", "sha": head["sha"]},
           expect=403)
    c2 = c.call("POST", f"{F}/git/commits", {"message": "m2", "tree": tree["sha"],
                                              "parents": [head["sha"]]})
    c.call("PATCH", f"{F}/git/refs/heads/patch", {"sha": c2["sha"]}, expect=200)
    assert base_git.resolve(f"refs/pull/{pr['number']}/head") == c2["sha"]
    assert c.call("GET", f"{R}/pulls/{pr['number']}")["head"]["sha"] == c2["sha"]
    seen = []
    for headers, body in _deliveries(2):
        payload = json.loads(body)
        name = f"{headers['x-github-event'].replace('_', '-')}-{payload['action']}"
        seen.append(name)
        schema = hooks[name]["post"]["requestBody"]["content"]["application/json"]["schema"]
        _validate(schema, payload, name)
        assert payload["repository"]["full_name"] == "acme/model"
        assert payload["pull_request"]["head"]["repo"]["full_name"] == "contrib/model"
    assert sorted(seen) == ["pull-request-opened", "pull-request-synchronize"]
