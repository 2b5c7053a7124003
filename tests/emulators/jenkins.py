"""An emulator of the Jenkins REST API, as python-jenkins 1.8.3 and jenkins-job-builder 6.5.0 use
it.

No Jenkins controller can run on our machines, so this follows
`tests/reference/jenkins-protocol.md` call by call: the `X-Jenkins` header, the crumb
issuer and CSRF on POSTs not authenticated with an API token, `createItem` for XML and for
folders, config.xml read/write, `doDelete`, `api/json` with `tree`/`depth`,
`buildWithParameters` answering 201 with a queue `Location`, queue items that turn into builds
with a result and console text, basic auth with passwords and API tokens, and 401/403/404/500
answered the way Jenkins answers them (403 bodies say "<user> is missing the <Permission>
permission", as Jenkins' access-denied page does).

Multibranch projects behave as on a real controller: one created through the API (createItem
with XML) has no branch jobs until a branch scan runs, as `ComputedFolder` schedules indexing
only when the configure form is submitted. `POST job/<mb>/build` is "Scan Multibranch
Pipeline Now" (`ComputedFolder.doBuild`: Job/Build, then a redirect back to the project, no
queue `Location`); `scan_seconds` later the scan finds the repository's `branches` (default
`main`), and `GET job/<mb>/indexing/consoleText` shows its log. A branch the repository does
not have never appears.

Beyond the protocol it offers what tests and benchmarks need, under `/_emulator/` (no auth,
never counted, never faulted): `GET state` (every item with its config.xml and builds),
`GET stats` (requests counted by method and route), `POST reset-stats`, `POST faults`
(latency, 5xx answers, dropped connections), `POST next-result` (outcome of the next build),
`POST indexing` (`{"branches": [...], "scan_seconds": S}`: what branch scans find and how long
they take; `{"index_now": "<mb job>"}` indexes a project at once, for tests about something
else).

It is one module on purpose: the state model and the HTTP routing read as one protocol page.
Run it alone: `python -m tests.emulators.jenkins --port 8080 --user admin:admin:admin-token`.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, quote, unquote, urlsplit

JENKINS_VERSION = "2.479.3"
FOLDER_ROOT = "com.cloudbees.hudson.plugins.folder.Folder"
MULTIBRANCH_ROOT = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
# Root element -> (Jenkins class name, kind). The kind decides what an item can do.
ROOTS: dict[str, tuple[str, str]] = {
    FOLDER_ROOT: (FOLDER_ROOT, "folder"),
    MULTIBRANCH_ROOT: (MULTIBRANCH_ROOT, "multibranch"),
    "flow-definition": ("org.jenkinsci.plugins.workflow.job.WorkflowJob", "job"),
    "project": ("hudson.model.FreeStyleProject", "job"),
}
# What Jenkins writes into `plugin="..."` attributes when it saves a config (name@version).
PLUGIN_VERSIONS = {
    "workflow-job": "1436.vfa_244484591f",
    "workflow-cps": "3969.vdc9d3a_efcc6a_",
    "workflow-multibranch": "795.ve0cb_1f45ca_9a_",
    "cloudbees-folder": "6.955.v81e2a_35c08d3",
    "github-branch-source": "1797.v86fdb_4d57d43",
    "git": "5.6.0",
    "branch-api": "2.1178.v969d9eb_c728e",
}
PERMISSIONS = (
    "Overall/Read", "Job/Read", "Job/ExtendedRead", "Job/Create", "Job/Configure",
    "Job/Delete", "Job/Build",
)
# The Java names Jenkins puts in the X-Required-Permission header.
JAVA_PERMISSION = {
    "Overall/Read": "hudson.model.Hudson.Read",
    "Job/Read": "hudson.model.Item.Read",
    "Job/ExtendedRead": "hudson.model.Item.ExtendedRead",
    "Job/Create": "hudson.model.Item.Create",
    "Job/Configure": "hudson.model.Item.Configure",
    "Job/Delete": "hudson.model.Item.Delete",
    "Job/Build": "hudson.model.Item.Build",
}
UNSAFE_NAME_CHARS = set("?*/\\%!@#$^&|<>[]:;")


@dataclass
class User:
    name: str
    password: str
    tokens: tuple[str, ...] = ()
    permissions: frozenset[str] = frozenset(PERMISSIONS)


@dataclass
class Build:
    number: int
    params: dict[str, str]
    started: float
    duration: float
    result: str
    user: str


@dataclass
class QueueItem:
    id: int
    job: Item
    params: dict[str, str]
    created: float
    user: str
    build: Build | None = None


@dataclass
class Scan:
    """One "Scan Multibranch Pipeline Now" of a multibranch project."""

    requested: float
    user: str
    finished: bool = False
    found: tuple[str, ...] = ()


@dataclass
class Item:
    name: str
    parent: Item | None
    root_tag: str
    xml: str = ""
    children: dict[str, Item] = field(default_factory=dict)
    builds: list[Build] = field(default_factory=list)
    next_build: int = 1
    scans: list[Scan] = field(default_factory=list)  # multibranch projects only

    @property
    def kind(self) -> str:
        return "root" if self.parent is None else ROOTS[self.root_tag][1]

    @property
    def full_name(self) -> str:
        parts: list[str] = []
        node: Item | None = self
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/".join(reversed(parts))

    def rel_url(self) -> str:
        return "".join(f"job/{quote(p)}/" for p in self.full_name.split("/")) if self.parent else ""

    @property
    def description(self) -> str:
        if not self.xml:
            return ""
        node = ET.fromstring(self.xml).find("description")
        return node.text or "" if node is not None else ""


@dataclass
class Faults:
    """Injected trouble. `latency_ms` applies to every request; the rest are one-shot rules."""

    latency_ms: float = 0.0
    rules: list[dict[str, Any]] = field(default_factory=list)  # {status|drop, count, path, method}

    def take(self, method: str, path: str) -> dict[str, Any] | None:
        for rule in self.rules:
            if rule.get("method") and rule["method"] != method:
                continue
            if rule.get("path") and not re.search(rule["path"], path):
                continue
            rule["count"] -= 1
            if rule["count"] <= 0:
                self.rules.remove(rule)
            return rule
        return None


class HttpError(Exception):
    def __init__(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(body)
        self.status, self.body, self.headers = status, body, headers or {}


def _denied(user: str, permission: str) -> HttpError:
    body = (f"<html><head><title>Access Denied [Jenkins]</title></head><body><h1>Access Denied</h1>"
            f"<p>{user} is missing the {permission} permission</p></body></html>")
    return HttpError(403, body, {"X-You-Are-Authenticated-As": user,
                                 "X-Required-Permission": JAVA_PERMISSION[permission]})


def parse_tree(spec: str) -> dict[str, Any]:
    """`jobs[name,url,jobs[name]],views[name]` -> {"jobs": {"name": None, ...}, "views": {...}}."""
    pos = 0

    def parse_list() -> dict[str, Any]:
        nonlocal pos
        out: dict[str, Any] = {}
        while pos < len(spec):
            match = re.compile(r"[A-Za-z_$][\w$]*").match(spec, pos)
            if not match:
                raise HttpError(400, f"bad tree parameter near {spec[pos:]!r}")
            pos = match.end()
            sub: dict[str, Any] | None = None
            if pos < len(spec) and spec[pos] == "[":
                pos += 1
                sub = parse_list()
                pos += 1  # the closing bracket
            if pos < len(spec) and spec[pos] == "{":  # a range such as {0,10}: all rows here
                pos = spec.index("}", pos) + 1
            out[match.group(0)] = sub
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
                continue
            break
        return out

    return parse_list()


def normalise_stored_xml(body: bytes, expected_root: str | None) -> tuple[str, str]:
    """Check the XML as Jenkins does on createItem/config.xml; return (root tag, stored text).

    Jenkins re-serialises what it stores: an XML 1.1 declaration and `name@version` in
    `plugin` attributes, so a client that compares text byte for byte sees a difference.
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise HttpError(500, f"java.io.IOException: Unable to read config.xml: {exc}") from exc
    if root.tag not in ROOTS:
        raise HttpError(500, f"java.io.IOException: Unable to read config.xml: "
                             f"unknown root element <{root.tag}>")
    if expected_root is not None and root.tag != expected_root:
        raise HttpError(500, f"java.io.IOException: Unable to read config.xml: expecting "
                             f"<{expected_root}> but got <{root.tag}>")
    for node in root.iter():
        plugin = node.get("plugin")
        if plugin and "@" not in plugin:
            node.set("plugin", f"{plugin}@{PLUGIN_VERSIONS.get(plugin, '1.0')}")
    text = "<?xml version='1.1' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="unicode")
    return root.tag, text


def folder_xml(description: str = "") -> str:
    root = ET.Element(
        FOLDER_ROOT, {"plugin": f"cloudbees-folder@{PLUGIN_VERSIONS['cloudbees-folder']}"}
    )
    for tag in ("actions", "description", "properties", "folderViews", "healthMetrics"):
        ET.SubElement(root, tag).text = (
            description if tag == "description" and description else None
        )
    return "<?xml version='1.1' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="unicode")


class JenkinsState:
    """Everything the emulated controller knows. All access holds `lock`."""

    def __init__(self, users: list[User] | None = None, *, csrf: bool = True,
                 anonymous_permissions: frozenset[str] = frozenset(),
                 branches: tuple[str, ...] = ("main",), queue_seconds: float = 0.05,
                 build_seconds: float = 0.1, scan_seconds: float = 1.0) -> None:
        self.lock = threading.RLock()
        self.users = {u.name: u for u in (users or [])}
        self.csrf = csrf
        self.anonymous_permissions = anonymous_permissions
        self.branches = branches  # what a branch scan finds in the (emulated) repository
        self.scan_seconds = scan_seconds
        self.queue_seconds = queue_seconds
        self.build_seconds = build_seconds
        self.root = Item("", None, "root")
        self.queue: dict[int, QueueItem] = {}
        self.pending_scans: list[tuple[Item, Scan]] = []
        self.next_queue_id = 1
        self.next_results: dict[str, list[str]] = {}
        self.faults = Faults()
        self.stats: Counter[str] = Counter()
        self.secret = b"emulator-crumb-secret"

    # -- items -------------------------------------------------------------------------
    def find(self, parts: list[str]) -> Item | None:
        node = self.root
        for part in parts:
            child = node.children.get(part)
            if child is None:
                return None
            node = child
        return node

    def create(self, parent: Item, name: str, root_tag: str, xml: str) -> Item:
        if parent.kind not in {"root", "folder"}:
            raise HttpError(404, "Not Found")
        if not name or set(name) & UNSAFE_NAME_CHARS or name in {".", ".."}:
            bad = next((c for c in name if c in UNSAFE_NAME_CHARS), name)
            raise HttpError(400, f"‘{bad}’ is an unsafe character")
        if name in parent.children:
            raise HttpError(400, f"A job already exists with the name ‘{name}’")
        item = Item(name, parent, root_tag, xml)
        parent.children[name] = item
        # A multibranch project starts empty: its branch jobs come from a scan (see module doc).
        return item

    # -- branch indexing -----------------------------------------------------------------
    def request_scan(self, project: Item, user: str) -> Scan:
        scan = Scan(time.monotonic(), user)
        project.scans.append(scan)
        self.pending_scans.append((project, scan))
        return scan

    def index(self, project: Item, scan: Scan | None = None) -> None:
        """What a finished scan does: a branch job for each branch the repository has."""
        if scan is None:
            scan = Scan(time.monotonic(), "SYSTEM")
            project.scans.append(scan)
        for branch in self.branches:
            if branch not in project.children:
                branch_xml = ("<?xml version='1.1' encoding='UTF-8'?>\n<flow-definition plugin="
                              f"\"workflow-job@{PLUGIN_VERSIONS['workflow-job']}\"><description/>"
                              "<keepDependencies>false</keepDependencies></flow-definition>")
                project.children[branch] = Item(branch, project, "flow-definition", branch_xml)
        scan.finished, scan.found = True, self.branches

    # -- queue and builds ---------------------------------------------------------------
    def enqueue(self, job: Item, params: dict[str, str], user: str) -> QueueItem:
        entry = QueueItem(self.next_queue_id, job, params, time.monotonic(), user)
        self.queue[entry.id] = entry
        self.next_queue_id += 1
        return entry

    def advance(self) -> None:
        """Finish due branch scans; turn queue items whose quiet period has passed into builds
        (time is lazy here)."""
        now = time.monotonic()
        due = [(p, s) for p, s in self.pending_scans if now >= s.requested + self.scan_seconds]
        self.pending_scans = [(p, s) for p, s in self.pending_scans
                              if now < s.requested + self.scan_seconds]
        for project, scan in due:
            self.index(project, scan)
        for entry in self.queue.values():
            if entry.build is None and now >= entry.created + self.queue_seconds:
                planned = self.next_results.get(entry.job.full_name) or []
                result = planned.pop(0) if planned else "SUCCESS"
                build = Build(
                    entry.job.next_build,
                    entry.params,
                    entry.created + self.queue_seconds,
                    self.build_seconds,
                    result,
                    entry.user,
                )
                entry.job.next_build += 1
                entry.job.builds.append(build)
                entry.build = build

    # -- inspection ----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        items: dict[str, Any] = {}

        def walk(node: Item) -> None:
            for child in node.children.values():
                items[child.full_name] = {
                    "class": ROOTS[child.root_tag][0], "config": child.xml,
                    "builds": [{"number": b.number, "result": b.result, "params": b.params}
                               for b in child.builds]}
                if child.kind == "multibranch":
                    items[child.full_name]["scans"] = [
                        {"user": s.user, "finished": s.finished, "found": list(s.found)}
                        for s in child.scans]
                walk(child)

        walk(self.root)
        return {"items": items, "queue": sorted(self.queue)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Jenkins (Jetty) does
    # Headers and body leave in two writes; with Nagle's algorithm on, the second waits for
    # the client's delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server: EmulatorServer
    _read_body: bytes | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # -- plumbing -------------------------------------------------------------------------
    @property
    def state(self) -> JenkinsState:
        return self.server.state

    def _send(
        self,
        status: int,
        body: str | bytes = b"",
        content_type: str = "text/html;charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("X-Jenkins", JENKINS_VERSION)
        self.send_header("X-Hudson", "1.395")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj), "application/json;charset=utf-8")

    def _body(self) -> bytes:
        # Read once and keep: every answer, even an error, must consume the request body so
        # the kept-alive connection stays in step.
        if self._read_body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._read_body = self.rfile.read(length) if length else b""
        return self._read_body

    def _base(self) -> str:
        return f"http://{self.headers.get('Host', '127.0.0.1')}/"

    def _dispatch(self, method: str) -> None:
        self._read_body = None
        self._body()
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query, keep_blank_values=True)
        if path.startswith("/_emulator/"):
            self._admin(method, path[len("/_emulator/"):])
            return
        with self.state.lock:
            faults = self.state.faults
            latency = faults.latency_ms
            rule = faults.take(method, path)
            self.state.stats["total"] += 1
            self.state.stats[method] += 1
            route = re.sub(r"(job/[^/]+/)+", "job/*/", path.lstrip("/"))
            route = re.sub(r"/\d+/", "/N/", route)
            self.state.stats[f"{method} {route}"] += 1
        if latency:
            time.sleep(latency / 1000.0)
        if rule is not None and rule.get("drop"):
            if rule.get("after"):
                # The request takes effect, then the answer is lost: what a proxy timeout or a
                # network blip does, and why clients must not blindly repeat non-idempotent calls.
                real, self.wfile = self.wfile, io.BytesIO()
                try:
                    self._handle(method, path, query)
                finally:
                    self.wfile = real
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # no status line: the client sees a reset
            return
        if rule is not None:
            self._body()
            self._send(int(rule.get("status", 503)), f"<html><body>Error {rule.get('status', 503)} "
                       "injected by the emulator</body></html>")
            return
        self._handle(method, path, query)

    def _handle(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        try:
            with self.state.lock:
                self.state.advance()
                user, by_token = self._authenticate()
                self._route(method, path, query, user, by_token)
        except HttpError as exc:
            self._send(exc.status, exc.body, headers=exc.headers)

    def _authenticate(self) -> tuple[str, bool]:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return "anonymous", False
        try:
            name, _, secret = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except ValueError as exc:
            raise HttpError(401, "Invalid authorization header") from exc
        user = self.state.users.get(name)
        if user is not None and secret in user.tokens:
            return name, True
        if user is not None and hmac.compare_digest(secret, user.password):
            return name, False
        raise HttpError(401, f"Invalid password/token for user: {name}",
                        {"WWW-Authenticate": 'Basic realm="Jenkins"'})

    def _require(self, user: str, permission: str) -> None:
        granted = (self.state.anonymous_permissions if user == "anonymous"
                   else self.state.users[user].permissions)
        if "Overall/Read" not in granted:
            raise _denied(user, "Overall/Read")
        if permission not in granted:
            raise _denied(user, permission)

    def _crumb_for(self, user: str) -> str:
        return hmac.new(self.state.secret, user.encode(), hashlib.sha256).hexdigest()

    # -- the protocol ---------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict[str, list[str]], user: str,
               by_token: bool) -> None:
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        node = self.state.root
        while len(segments) >= 2 and segments[0] == "job":
            child = node.children.get(segments[1])
            if child is None:
                self._body()
                raise HttpError(404, "<html><body>Not Found</body></html>")
            node, segments = child, segments[2:]
        rest = "/".join(segments)
        self._require(user, "Overall/Read")
        if (method == "POST" and self.state.csrf and not by_token
                and self.headers.get("Jenkins-Crumb") != self._crumb_for(user)):
            raise HttpError(403, "No valid crumb was included in the request")
        if method == "GET":
            self._get(node, rest, query, user)
        else:
            self._post(node, rest, query, user)

    def _get(self, node: Item, rest: str, query: dict[str, list[str]], user: str) -> None:
        tree = parse_tree(query["tree"][0]) if query.get("tree") else None
        depth = int(query.get("depth", ["0"])[0] or 0)
        if node.parent is None and rest == "crumbIssuer/api/json":
            if not self.state.csrf:
                raise HttpError(404, "Not Found")
            self._json({"_class": "hudson.security.csrf.DefaultCrumbIssuer",
                        "crumb": self._crumb_for(user), "crumbRequestField": "Jenkins-Crumb"})
        elif node.parent is None and rest == "pluginManager/api/json":
            self._json({"_class": "hudson.LocalPluginManager", "plugins": [
                {"active": True, "enabled": True, "shortName": name, "longName": name,
                 "version": version, "hasUpdate": False, "pinned": False, "dependencies": []}
                for name, version in PLUGIN_VERSIONS.items()]})
        elif node.parent is None and rest == "me/api/json":
            self._json({"_class": "hudson.model.User", "id": user, "fullName": user})
        elif node.parent is None and (m := re.fullmatch(r"queue/item/(\d+)/api/json", rest)):
            self._json(self._queue_json(int(m.group(1))))
        elif node.parent is None and rest == "queue/api/json":
            self._json({"_class": "hudson.model.Queue", "items": [
                self._queue_json(i) for i, e in self.state.queue.items() if e.build is None]})
        elif rest == "api/json":
            self._require(user, "Job/Read")
            self._json(project(self._item_fields(node), tree, depth, self))
        elif rest == "config.xml" and node.parent is not None:
            self._require(user, "Job/ExtendedRead")
            self._send(200, node.xml, "application/xml;charset=utf-8")
        elif m := re.fullmatch(r"(\d+|lastBuild)/(api/json|consoleText)", rest):
            build = self._build(node, m.group(1))
            if m.group(2) == "consoleText":
                self._send(200, self._console(node, build), "text/plain;charset=utf-8")
            else:
                self._json(project(self._build_fields(node, build), tree, depth, self))
        elif node.kind == "multibranch" and rest in {"indexing/console", "indexing/consoleText"}:
            self._require(user, "Job/Read")
            text = self._indexing_log(node)
            if rest.endswith("consoleText"):
                self._send(200, text, "text/plain;charset=utf-8")
            else:
                self._send(200, f"<html><body><pre>{text}</pre></body></html>")
        elif rest in {"", "configure"}:
            self._send(200, f"<html><body>{node.full_name or 'Dashboard'}</body></html>")
        else:
            raise HttpError(404, "<html><body>Not Found</body></html>")

    def _post(self, node: Item, rest: str, query: dict[str, list[str]], user: str) -> None:
        body = self._body()
        if rest == "createItem":
            self._require(user, "Job/Create")
            name = query.get("name", [""])[0]
            content_type = self.headers.get("Content-Type", "")
            if "form-urlencoded" in content_type:
                form = parse_qs(body.decode("utf-8"))
                mode = (query.get("mode") or form.get("mode") or [""])[0]
                if mode != FOLDER_ROOT:
                    raise HttpError(400, f"No item type ‘{mode}’ is known")
                item = self.state.create(node, name, FOLDER_ROOT, folder_xml())
                self._send(
                    302, b"", headers={"Location": self._base() + item.rel_url() + "configure"}
                )
                return
            if node.kind not in {"root", "folder"}:
                raise HttpError(404, "Not Found")
            tag, xml = normalise_stored_xml(body, None)
            self.state.create(node, name, tag, xml)
            self._send(200)
        elif rest == "config.xml" and node.parent is not None:
            self._require(user, "Job/Configure")
            _, node.xml = normalise_stored_xml(body, node.root_tag)
            self._send(200)
        elif rest == "doDelete" and node.parent is not None:
            self._require(user, "Job/Delete")
            parent = node.parent
            del parent.children[node.name]
            self._send(302, b"", headers={"Location": self._base() + parent.rel_url()})
        elif rest == "build" and node.kind == "multibranch":
            # ComputedFolder.doBuild: schedule a scan, then forwardToPreviousPage (no Referer
            # from API clients: a redirect to "." , the project's page). No queue Location.
            self._require(user, "Job/Build")
            self.state.request_scan(node, user)
            self._send(302, b"", headers={"Location": self._base() + node.rel_url()})
        elif rest in {"build", "buildWithParameters"} and node.kind == "job":
            self._require(user, "Job/Build")
            params = {k: v[-1] for k, v in query.items() if k not in {"token", "delay"}}
            if "form-urlencoded" in self.headers.get("Content-Type", ""):
                params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8")).items()})
            entry = self.state.enqueue(node, params, user)
            self._send(201, b"", headers={"Location": f"{self._base()}queue/item/{entry.id}/"})
        elif node.parent is None and rest == "pipeline-model-converter/validateJenkinsfile":
            self._json({"status": "ok", "data": {"result": "success"}})
        else:
            raise HttpError(404, "<html><body>Not Found</body></html>")

    # -- JSON shapes ------------------------------------------------------------------------
    def _item_fields(self, node: Item) -> dict[str, Any]:
        base = self._base()
        if node.parent is None:
            view = {"_class": "hudson.model.AllView", "name": "all", "url": base}
            return {"_class": "hudson.model.Hudson", "mode": "NORMAL", "nodeName": "",
                    "nodeDescription": "the Jenkins controller's built-in node",
                    "numExecutors": 2, "description": None, "url": base,
                    "jobs": list(node.children.values()), "primaryView": view, "views": [view],
                    "quietingDown": False, "useCrumbs": self.state.csrf, "useSecurity": True}
        fields: dict[str, Any] = {
            "_class": ROOTS[node.root_tag][0], "name": node.name, "fullName": node.full_name,
            "displayName": node.name, "fullDisplayName": node.full_name.replace("/", " » "),
            "url": base + node.rel_url(), "description": node.description, "actions": [],
        }
        if node.kind == "job":
            last = node.builds[-1] if node.builds else None
            queued = [e for e in self.state.queue.values() if e.job is node and e.build is None]
            fields.update({
                "buildable": True, "builds": list(reversed(node.builds)),
                "color": self._color(last), "firstBuild": node.builds[0] if node.builds else None,
                "lastBuild": last, "lastCompletedBuild": next(
                    (b for b in reversed(node.builds) if not self._building(b)), None),
                "inQueue": bool(queued), "keepDependencies": False,
                "nextBuildNumber": node.next_build, "property": [], "queueItem": None,
                "disabled": False,
            })
        else:
            fields.update({"jobs": list(node.children.values()), "primaryView": None,
                           "views": [{"_class": "hudson.model.AllView", "name": "All",
                                      "url": base + node.rel_url()}]})
        return fields

    def _summary(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, Item):
            out = {"_class": ROOTS[obj.root_tag][0], "name": obj.name,
                   "url": self._base() + obj.rel_url()}
            if obj.kind == "job":
                out["color"] = self._color(obj.builds[-1] if obj.builds else None)
            return out
        assert isinstance(obj, Build)
        return {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "number": obj.number,
                "url": f"{self._base()}{self._job_of(obj).rel_url()}{obj.number}/"}

    def _job_of(self, build: Build) -> Item:
        def walk(node: Item) -> Item | None:
            for child in node.children.values():
                if build in child.builds:
                    return child
                found = walk(child)
                if found:
                    return found
            return None
        found = walk(self.state.root)
        assert found is not None
        return found

    def _building(self, build: Build) -> bool:
        return time.monotonic() < build.started + build.duration

    def _color(self, build: Build | None) -> str:
        if build is None:
            return "notbuilt"
        colors = {"SUCCESS": "blue", "UNSTABLE": "yellow", "ABORTED": "aborted"}
        color = colors.get(build.result, "red")
        return color + "_anime" if self._building(build) else color

    def _build(self, node: Item, ref: str) -> Build:
        if node.kind != "job" or not node.builds:
            raise HttpError(404, "Not Found")
        if ref == "lastBuild":
            return node.builds[-1]
        for build in node.builds:
            if build.number == int(ref):
                return build
        raise HttpError(404, "Not Found")

    def _build_fields(self, node: Item, build: Build) -> dict[str, Any]:
        building = self._building(build)
        return {
            "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "number": build.number,
            "id": str(build.number), "displayName": f"#{build.number}",
            "fullDisplayName": f"{node.full_name.replace('/', ' » ')} #{build.number}",
            "url": f"{self._base()}{node.rel_url()}{build.number}/", "building": building,
            "inProgress": building, "result": None if building else build.result,
            "duration": 0 if building else int(build.duration * 1000),
            "estimatedDuration": int(build.duration * 1000),
            "timestamp": int((time.time() - (time.monotonic() - build.started)) * 1000),
            "actions": [
                {"_class": "hudson.model.ParametersAction", "parameters": [
                    {"_class": "hudson.model.StringParameterValue", "name": k, "value": v}
                    for k, v in build.params.items()]},
                {"_class": "hudson.model.CauseAction", "causes": [
                    {"_class": "hudson.model.Cause$UserIdCause",
                     "shortDescription": f"Started by user {build.user}", "userId": build.user}]},
            ],
        }

    def _indexing_log(self, node: Item) -> str:
        if not node.scans:
            return "No branch indexing has run yet.\n"
        scan = node.scans[-1]
        lines = [f"Started by user {scan.user}", "Starting branch indexing..."]
        if scan.finished:
            lines += [f"Checking branch {b}\n  'Jenkinsfile' found\n  Met criteria"
                      for b in scan.found]
            lines += [f"  {len(scan.found)} branches were processed", "Finished branch indexing.",
                      "Finished: SUCCESS"]
        return "\n".join(lines) + "\n"

    def _console(self, node: Item, build: Build) -> str:
        lines = [f"Started by user {build.user}"]
        lines += [f"Parameter {k} = {v}" for k, v in build.params.items()]
        lines.append(f"[Pipeline] Start of Pipeline ({node.full_name})")
        if not self._building(build):
            lines += ["[Pipeline] End of Pipeline", f"Finished: {build.result}"]
        return "\n".join(lines) + "\n"

    def _queue_json(self, number: int) -> dict[str, Any]:
        entry = self.state.queue.get(number)
        if entry is None:
            raise HttpError(404, "Not Found")
        task = self._summary(entry.job)
        base = {
            "id": entry.id,
            "task": task,
            "params": "".join(f"\n{k}={v}" for k, v in entry.params.items()),
            "actions": [
                {
                    "_class": "hudson.model.ParametersAction",
                    "parameters": [{"name": k, "value": v} for k, v in entry.params.items()],
                }
            ],
            "blocked": False,
            "buildable": False,
            "stuck": False,
            "cancelled": False,
            "url": f"queue/item/{entry.id}/",
            "inQueueSince": int((time.time() - (time.monotonic() - entry.created)) * 1000),
        }
        if entry.build is None:
            return {"_class": "hudson.model.Queue$WaitingItem", **base,
                    "why": "In the quiet period. Expires in 0 ms", "executable": None}
        return {"_class": "hudson.model.Queue$LeftItem", **base, "why": None,
                "executable": {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
                               "number": entry.build.number,
                               "url": f"{self._base()}{entry.job.rel_url()}{entry.build.number}/"}}

    # -- the emulator's own endpoints ---------------------------------------------------------
    def _admin(self, method: str, what: str) -> None:
        body = self._body()
        payload = json.loads(body) if body else {}
        with self.state.lock:
            if method == "GET" and what == "state":
                self.state.advance()
                self._json(self.state.snapshot())
            elif method == "GET" and what == "stats":
                self._json(dict(self.state.stats))
            elif method == "POST" and what == "reset-stats":
                self.state.stats.clear()
                self._json({})
            elif method == "POST" and what == "faults":
                self.state.faults.latency_ms = float(payload.get("latency_ms", 0.0))
                self.state.faults.rules = list(payload.get("rules", []))
                self._json({})
            elif method == "POST" and what == "next-result":
                self.state.next_results.setdefault(payload["job"], []).append(payload["result"])
                self._json({})
            elif method == "POST" and what == "indexing":
                if "branches" in payload:
                    self.state.branches = tuple(str(b) for b in payload["branches"])
                if "scan_seconds" in payload:
                    self.state.scan_seconds = float(payload["scan_seconds"])
                if payload.get("index_now"):
                    project = self.state.find(str(payload["index_now"]).split("/"))
                    if project is None or project.kind != "multibranch":
                        self._json({"error": f"no multibranch project {payload['index_now']}"}, 404)
                        return
                    self.state.index(project)
                self._json({"branches": list(self.state.branches),
                            "scan_seconds": self.state.scan_seconds})
            else:
                self._json({"error": f"unknown emulator endpoint {what}"}, 404)


def project(
    fields: dict[str, Any], tree: dict[str, Any] | None, depth: int, handler: Handler
) -> Any:
    """Apply Jenkins' `tree` / `depth` rules to an object whose nested values are Items/Builds."""

    def convert(value: Any, sub: dict[str, Any] | None, level: int) -> Any:
        if isinstance(value, list):
            return [convert(v, sub, level) for v in value]
        if isinstance(value, Item | Build):
            if sub is None and level <= 0:
                return handler._summary(value)
            inner = (handler._item_fields(value) if isinstance(value, Item)
                     else handler._build_fields(handler._job_of(value), value))
            return shape(inner, sub, level - 1)
        return value

    def shape(obj: dict[str, Any], sub: dict[str, Any] | None, level: int) -> dict[str, Any]:
        if sub is None:
            return {k: convert(v, None, level) for k, v in obj.items()}
        out = {"_class": obj["_class"]} if "_class" in obj else {}
        for key, subtree in sub.items():
            if key in obj:
                out[key] = convert(obj[key], subtree if subtree is not None else {}, level)
        return out

    return shape(fields, tree, depth)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, state: JenkinsState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"


class JenkinsEmulator:
    """In-process handle: start on a free port, stop in the test's teardown."""

    def __init__(self, state: JenkinsState | None = None, port: int = 0) -> None:
        self.state = state or JenkinsState([User("admin", "admin-password", ("admin-token",))])
        self.server = EmulatorServer(self.state, port=port)
        # A short poll interval: shutdown() waits for it, and tests start many emulators.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD[:TOKEN]",
        help="a user with every permission (repeatable); default admin:admin:admin-token",
    )
    parser.add_argument("--no-csrf", action="store_true", help="answer 404 on crumbIssuer")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--branch", action="append", default=[], metavar="NAME",
                        help="a branch that multibranch scans find (repeatable); default main")
    parser.add_argument("--scan-seconds", type=float, default=1.0,
                        help="how long a branch scan takes [default: 1]")
    args = parser.parse_args(argv)
    users = []
    for entry in args.user or ["admin:admin:admin-token"]:
        name, password, *tokens = entry.split(":")
        users.append(User(name, password, tuple(tokens)))
    state = JenkinsState(users, csrf=not args.no_csrf, branches=tuple(args.branch or ["main"]),
                         scan_seconds=args.scan_seconds)
    state.faults.latency_ms = args.latency_ms
    server = EmulatorServer(state, args.host, args.port)
    print(f"Jenkins emulator on {server.url} (state: {server.url}_emulator/state)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
