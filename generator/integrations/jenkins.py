"""mlgen's one doorway to a Jenkins controller: the only module that imports python-jenkins.

python-jenkins retries nothing and words every 401/403/500 as "Possibly authentication
failed", so this module adds what a bank's controller needs: retries with backoff on
connection errors and 5xx answers, timeouts, TLS verification with a CA bundle, errors that
name the job and the permission that is missing, and a count of the requests made. The API
token lives in a field kept out of every repr and message.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from ..envsecret import env_secret, secret_source
from ..errors import MlgenError, UsageError, require_extra

T = TypeVar("T")

# What each operation needs on the controller, named as Jenkins' security matrix names it.
PERMISSION_FOR = {
    "read": "Overall/Read",
    "read config": "Job/ExtendedRead",
    "create": "Job/Create",
    "create folder": "Job/Create",
    "reconfigure": "Job/Configure",
    "delete": "Job/Delete",
    "build": "Job/Build",
    "scan": "Job/Build",  # "Scan Multibranch Pipeline Now" is the project's build action
}
RETRY_STATUSES = frozenset({500, 502, 503, 504})
_MISSING_PERMISSION = re.compile(r"is missing the ([A-Za-z]+/[A-Za-z]+) permission")
_FOLDER_TREE_DEPTH = 8  # nested folders listed in one request; deeper trees are unusual


class JenkinsError(MlgenError):
    """A Jenkins call failed; the message names the job, the operation and what to do."""


class NotFound(Exception):
    """The item (or queue entry, or build) is not on the controller."""


class NoSuchJob(JenkinsError):
    """A build was asked of a job the controller does not have (yet: see jenkins_sync.trigger)."""

    def __init__(self, job: str, url: str) -> None:
        super().__init__(f"job {job}: build failed: no such job on {url} (run `mlgen jenkins "
                         "apply` first, or check --job/--branch)")
        self.job, self.url = job, url


class AlreadyExists(Exception):
    """createItem refused a name that is taken."""


@dataclass(frozen=True)
class Connection:
    url: str
    user: str | None = None
    token: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    # What a refused login tells the user to check: the variables (or files) the user and
    # token came from.
    credentials_from: str = "JENKINS_USER and JENKINS_API_TOKEN"


def connection_from(
    *, url: str | None, user: str | None, token: str | None, spec_url: str | None,
    ca_bundle: str | None = None, timeout: float = 30.0, retries: int = 3,
    env: Mapping[str, str] | None = None,
) -> Connection:
    """Flags first, then JENKINS_URL / JENKINS_USER / JENKINS_API_TOKEN, then the spec's URL.
    The user and token may also come from files (JENKINS_USER_FILE, JENKINS_API_TOKEN_FILE:
    a mounted Kubernetes Secret, see mlgen.envsecret)."""
    env = os.environ if env is None else env
    final_url = url or env.get("JENKINS_URL") or spec_url
    if not final_url:
        raise UsageError("no Jenkins URL: pass --url, set JENKINS_URL, or set ci.jenkins.url "
                         "in mlgen.yaml")
    parts = urlsplit(final_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UsageError("the Jenkins URL must start with http:// or https:// and name a host")
    if parts.username or parts.password:
        # Never echo the URL here: it carries a secret.
        raise UsageError("the Jenkins URL must not carry credentials: put the user in "
                         "JENKINS_USER and the API token in JENKINS_API_TOKEN")
    final_user = user or env_secret(env, "JENKINS_USER")
    final_token = token or env_secret(env, "JENKINS_API_TOKEN")
    if bool(final_user) != bool(final_token):
        raise UsageError("give both JENKINS_USER and JENKINS_API_TOKEN (or their *_FILE "
                         "variables, or --user and the token), or neither for anonymous access")
    sources = ("JENKINS_USER" if user else secret_source(env, "JENKINS_USER"),
               "JENKINS_API_TOKEN" if token else secret_source(env, "JENKINS_API_TOKEN"))
    return Connection(url=final_url if final_url.endswith("/") else final_url + "/",
                      user=final_user, token=final_token,
                      ca_bundle=ca_bundle or env.get("JENKINS_CA_BUNDLE") or None,
                      timeout=timeout, retries=retries, credentials_from=" and ".join(sources))


@dataclass(frozen=True)
class RemoteItem:
    """One item from the controller's listing."""

    full_name: str
    java_class: str
    description: str

    @property
    def is_folder(self) -> bool:
        return self.java_class == "com.cloudbees.hudson.plugins.folder.Folder"


def job_path(name: str) -> str:
    return "".join(f"job/{quote(part, safe='')}/" for part in name.split("/"))


def _client_class() -> type:
    jenkins = require_extra("jenkins", "jenkins", "mlgen jenkins")
    requests = require_extra("requests", "jenkins", "mlgen jenkins")

    class RetryingJenkins(jenkins.Jenkins):  # type: ignore[misc,name-defined]
        """python-jenkins with retries and a request counter, at the one place all calls pass."""

        def __init__(self, conn: Connection) -> None:
            super().__init__(conn.url, conn.user, conn.token, timeout=conn.timeout)
            self.conn = conn
            self.requests_made = 0
            self._count_lock = threading.Lock()
            self._session.verify = conn.ca_bundle or True
            if conn.user and conn.token:
                # Real Jenkins exempts API-token requests from CSRF checks: skip the crumb
                # round trip. If the "token" is a password, the 403 below fetches a crumb.
                self.crumb = False

        def _request(self, req: Any, stream: Any = None) -> Any:
            # Non-idempotent: a retried build could start twice, so only refusals that
            # mean "nothing happened" (connect errors, 5xx answers) are retried for it.
            starts_build = req.method == "POST" and re.search(r"/build(WithParameters)?(\?|$)",
                                                              req.url)
            attempt = 0
            while True:
                with self._count_lock:
                    self.requests_made += 1
                try:
                    response = super()._request(req, stream)
                except requests.exceptions.ConnectionError as exc:
                    sent = not isinstance(exc, requests.exceptions.ConnectTimeout) and \
                        "NewConnectionError" not in repr(exc)
                    if attempt >= self.conn.retries or (starts_build and sent):
                        raise
                else:
                    if response.status_code == 403 and "No valid crumb" in response.text \
                            and self.crumb is False and attempt == 0:
                        self.crumb = None  # type: ignore[assignment]  # a password after all: fetch a crumb
                        self.maybe_add_crumb(req)
                        attempt += 1
                        continue
                    if response.status_code not in RETRY_STATUSES or attempt >= self.conn.retries:
                        return response
                time.sleep(self.conn.backoff * (2 ** attempt))
                attempt += 1

    return RetryingJenkins


class JenkinsClient:
    """The calls mlgen makes, each one request (python-jenkins' helpers make up to three)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._server = _client_class()(conn)
        self._jenkins = require_extra("jenkins", "jenkins", "mlgen jenkins")
        self._requests = require_extra("requests", "jenkins", "mlgen jenkins")

    @property
    def requests_made(self) -> int:
        return int(self._server.requests_made)

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, job: str, operation: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (NotFound, AlreadyExists):
            raise
        except self._jenkins.NotFoundException as exc:
            raise NotFound(job) from exc
        except self._jenkins.TimeoutException as exc:
            raise JenkinsError(f"job {job}: {operation} timed out after {self.conn.timeout:g} s "
                               f"talking to {self.conn.url}") from exc
        except self._jenkins.JenkinsException as exc:
            raise self._explain(job, operation, str(exc)) from exc
        except self._requests.exceptions.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status == 404:
                raise NotFound(job) from exc
            text = exc.response.text if exc.response is not None else ""
            if status == 400 and "already exists" in text:
                raise AlreadyExists(job) from exc
            if status >= 500:
                raise JenkinsError(
                    f"job {job}: {operation} failed on the server ({status}) after "
                    f"{self.conn.retries + 1} attempts: {_first_line(text)}"
                ) from exc
            raise JenkinsError(f"job {job}: {operation} refused by Jenkins ({status}): "
                               f"{_first_line(text)}") from exc
        except self._requests.exceptions.RequestException as exc:
            raise JenkinsError(f"job {job}: {operation} failed: cannot reach {self.conn.url} "
                               f"after {self.conn.retries + 1} attempts "
                               f"({type(exc).__name__})") from exc

    def _explain(self, job: str, operation: str, message: str) -> JenkinsError:
        status = re.search(r"\[(\d{3})\]", message)
        code = int(status.group(1)) if status else 0
        who = self.conn.user or "anonymous"
        if code == 401:
            return JenkinsError(f"job {job}: {operation} refused (401): Jenkins at {self.conn.url} "
                                f"did not accept the credentials of user '{who}'; check "
                                f"{self.conn.credentials_from}")
        if code == 403:
            if "No valid crumb" in message:
                return JenkinsError(f"job {job}: {operation} refused (403): no valid CSRF crumb; "
                                    "use an API token rather than a password")
            found = _MISSING_PERMISSION.search(message)
            permission = found.group(1) if found else PERMISSION_FOR.get(operation, "Overall/Read")
            return JenkinsError(f"job {job}: {operation} refused (403): user '{who}' is missing "
                                f"the {permission} permission on {self.conn.url}")
        if code >= 500:
            return JenkinsError(f"job {job}: {operation} failed on the server ({code}) after "
                                f"{self.conn.retries + 1} attempts: "
                                f"{_first_line(message.partition(chr(10))[2])}")
        return JenkinsError(f"job {job}: {operation} failed: {_first_line(message)}")

    def _open(self, method: str, path: str, **kwargs: Any) -> Any:
        req = self._requests.Request(method, self._server.server + path, **kwargs)
        return self._server.jenkins_request(req)

    # -- reads ----------------------------------------------------------------------------
    def get_config(self, name: str) -> str | None:
        """The live config.xml, or None when there is no such job."""
        try:
            return str(self._call(name, "read config", lambda: self._open(
                "GET", job_path(name) + "config.xml").text))
        except NotFound:
            return None

    def list_items(self) -> dict[str, RemoteItem]:
        """Every item down to a few folder levels, with descriptions, in one request."""
        tree = "_class,name,description"
        for _ in range(_FOLDER_TREE_DEPTH):
            tree = f"_class,name,description,jobs[{tree}]"
        body = self._call("(all jobs)", "read", lambda: self._open(
            "GET", f"api/json?tree=jobs[{tree}]").text)
        out: dict[str, RemoteItem] = {}

        def walk(jobs: list[dict[str, Any]], prefix: str) -> None:
            for job in jobs:
                full = prefix + job["name"]
                out[full] = RemoteItem(full, job.get("_class", ""), job.get("description") or "")
                walk(job.get("jobs") or [], full + "/")

        walk(json.loads(body).get("jobs", []), "")
        return out

    # -- writes ---------------------------------------------------------------------------
    def create_item(self, name: str, config_xml: str, *, folder: bool = False) -> None:
        parent, _, short = name.rpartition("/")
        path = (job_path(parent) if parent else "") + f"createItem?name={quote(short, safe='')}"
        self._call(name, "create folder" if folder else "create", lambda: self._open(
            "POST", path, data=config_xml.encode("utf-8"),
            headers={"Content-Type": "text/xml; charset=utf-8"}))

    def reconfigure(self, name: str, config_xml: str) -> None:
        self._call(name, "reconfigure", lambda: self._open(
            "POST", job_path(name) + "config.xml", data=config_xml.encode("utf-8"),
            headers={"Content-Type": "text/xml; charset=utf-8"}))

    def delete(self, name: str) -> None:
        try:
            # Jenkins answers with a redirect to the parent folder; following it is one GET.
            self._call(name, "delete", lambda: self._open("POST", job_path(name) + "doDelete"))
        except NotFound:
            pass  # a retry after a dropped answer finds it gone: that is the goal

    # -- builds ---------------------------------------------------------------------------
    def build(self, name: str, parameters: Mapping[str, str]) -> int:
        """Start a build; returns the queue item number."""
        def start() -> int:
            try:
                return int(self._server.build_job(name, dict(parameters) or None))
            except self._jenkins.EmptyResponseException as exc:
                # Jenkins answered with a page, not a queue item: the item is buildable but
                # is not a job (on a multibranch project that POST just started a scan).
                raise JenkinsError(f"job {name}: build failed: Jenkins queued no build (no queue "
                                   "item in its answer); is it a multibranch project? Name a "
                                   "branch with --branch") from exc

        try:
            return self._call(name, "build", start)
        except NotFound as exc:
            raise NoSuchJob(name, self.conn.url) from exc

    def scan(self, name: str) -> None:
        """"Scan Multibranch Pipeline Now": the same POST as python-jenkins' build_job(name).

        Jenkins (ComputedFolder.doBuild) queues the branch indexing and redirects back to the
        project's page, so there is no queue item to follow: callers watch for the branch job.
        """
        try:
            self._call(name, "scan", lambda: self._open("POST", job_path(name) + "build"))
        except NotFound as exc:
            raise NoSuchJob(name, self.conn.url) from exc

    def item_class(self, name: str) -> str | None:
        """The item's Java class (`_class`), or None when there is no such item."""
        try:
            body = self._call(name, "read", lambda: self._open(
                "GET", job_path(name) + "api/json?tree=_class,name").text)
        except NotFound:
            return None
        return str(json.loads(body).get("_class") or "")

    def _read(self, name: str, path: str, what: str) -> str:
        try:
            return str(self._call(name, "read", lambda: self._open("GET", path).text))
        except NotFound as exc:
            raise JenkinsError(f"job {name}: {what} not found on {self.conn.url}") from exc

    def queue_item(self, name: str, number: int) -> dict[str, Any]:
        body = self._read(name, f"queue/item/{number}/api/json?depth=0", f"queue item {number}")
        return dict(json.loads(body))

    def build_info(self, name: str, number: int) -> dict[str, Any]:
        body = self._read(name, job_path(name) + f"{number}/api/json?depth=0", f"build #{number}")
        return dict(json.loads(body))

    def console_text(self, name: str, number: int) -> str:
        return self._read(name, job_path(name) + f"{number}/consoleText", f"build #{number}")


def _first_line(text: str) -> str:
    """A short reason from an answer body (Jenkins sends HTML pages): never the whole page."""
    plain = re.sub(r"<[^>]+>", " ", text)
    for line in plain.splitlines():
        line = " ".join(line.split())
        if line and not line.lower().startswith(("error in request", "access denied")):
            return line[:200]
    return "no details in the answer"
