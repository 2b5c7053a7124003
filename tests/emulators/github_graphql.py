"""The GitHub emulator's GraphQL endpoint (POST /graphql), split from github.py.

Every query is parsed and validated against GitHub's published schema (the introspection JSON
of npm @octokit/graphql-schema, pinned in package.json), then executed over the emulator's
state: real git objects and the REST side's pull requests. What the emulator does not provide
fails loudly ("not emulated") instead of answering null; mutations are refused. See the
module docstring of tests/emulators/github.py for the fields served.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    Node,
    OperationType,
    build_client_schema,
    execute,
    get_location,
    get_operation_ast,
    parse,
    validate,
)

from tests.emulators.github import ApiError
from tests.helpers import REPO as REPO_ROOT

if TYPE_CHECKING:
    from tests.emulators.github import Repo, Request, Shapes, State

# GitHub's public schema as Octokit publishes it (npm @octokit/graphql-schema, pinned in
# package.json). The introspection JSON, not schema.graphql: the SDL repeats some field
# definitions and graphql-core refuses it.
GRAPHQL_SCHEMA_ENV = "MLGEN_GITHUB_GRAPHQL_SCHEMA"
DEFAULT_GRAPHQL_SCHEMA = (REPO_ROOT / "node_modules" / "@octokit"
                          / "graphql-schema" / "schema.json")
# Emulator choice (GitHub documents no figure): Blob.text stops at 512 KiB with isTruncated
# true, so a client's fallback to the REST blob can be exercised with a modest file.
BLOB_TEXT_LIMIT = 512 * 1024
# GitHub refuses a connection asked for more than 100 nodes at once.
MAX_PAGE = 100

_schema_lock = threading.Lock()
_schemas: dict[Path, GraphQLSchema] = {}


def graphql_schema_path() -> Path:
    return Path(os.environ.get(GRAPHQL_SCHEMA_ENV) or DEFAULT_GRAPHQL_SCHEMA)


def load_graphql_schema(path: Path | None = None) -> GraphQLSchema:
    """GitHub's schema, read once per process (about 0.2 s) and shared by every emulator."""
    path = path or graphql_schema_path()
    with _schema_lock:
        if path not in _schemas:
            if not path.is_file():
                raise ApiError(500, f"GitHub's GraphQL schema {path} is missing: run "
                               f"scripts/install-tools.sh (or set {GRAPHQL_SCHEMA_ENV})")
            doc = json.loads(path.read_bytes())
            _schemas[path] = build_client_schema(doc.get("data", doc))
        return _schemas[path]


class NotEmulated(Exception):
    """A field or argument of GitHub's schema that this emulator does not answer."""


def _resolve_field(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    """Nodes are dicts; a callable value is a field computed only when selected (with its
    arguments). A field the dict lacks fails the query instead of answering null, so a client
    cannot pass a test by reading a field the emulator never fills."""
    name = info.field_name
    if not isinstance(source, dict) or name not in source:
        raise NotEmulated(f"field {info.parent_type.name}.{name} is not emulated")
    value = source[name]
    return value(args) if callable(value) else value


def _page(items: list[Any], args: dict[str, Any], field_name: str) -> dict[str, Any]:
    """A connection's nodes and totalCount, with GitHub's rules for first/last."""
    for unsupported in ("after", "before", "orderBy", "labels"):
        if args.get(unsupported):
            raise NotEmulated(f"argument {field_name}({unsupported}:) is not emulated")
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError(f"You must provide a `first` or `last` value to properly paginate "
                           f"the `{field_name}` connection.")
    for key, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise GraphQLError(f"Requesting {value} records on the `{field_name}` connection "
                               f"exceeds the `{key}` limit of {MAX_PAGE} records.")
    nodes = items[:first] if first is not None else items
    if last is not None:
        nodes = nodes[len(nodes) - last:] if last else []
    return {"nodes": nodes, "totalCount": len(items)}


class GraphQLNodes:
    """The dict nodes of one repository that the executor walks, built on demand from git."""

    def __init__(self, shape: Shapes, repo: Repo) -> None:
        self.shape = shape
        self.repo = repo
        self.git = repo.git
        self._blobs: dict[str, bytes] = {}
        self._refs: dict[str, str] | None = None

    def refs(self) -> dict[str, str]:
        """The refs, read once per query (a query is answered from one state of the repo)."""
        if self._refs is None:
            self._refs = self.git.refs()
        return self._refs

    def repository(self) -> dict[str, Any]:
        r = self.repo
        return {"__typename": "Repository", "name": r.name, "nameWithOwner": r.full_name,
                "defaultBranchRef": lambda a: self.ref(f"refs/heads/{r.default_branch}"),
                "ref": lambda a: self.ref(self._qualify(a["qualifiedName"])),
                "object": lambda a: self.object_at(a.get("oid"), a.get("expression"))}

    def _qualify(self, name: str) -> str | None:
        """GitHub tries the name as a full ref first, then as a branch, then as a tag."""
        refs = self.refs()
        for candidate in (name, f"refs/heads/{name}", f"refs/tags/{name}"):
            if candidate.startswith("refs/") and candidate in refs:
                return candidate
        return None

    def ref(self, qualified: str | None) -> dict[str, Any] | None:
        sha = self.refs().get(qualified) if qualified else None
        if qualified is None or sha is None:
            return None
        prefix = qualified[:qualified.index("/", len("refs/")) + 1]
        short = qualified[len(prefix):]
        return {"__typename": "Ref", "name": short, "prefix": prefix,
                "target": lambda a: self.object(sha),
                "associatedPullRequests": lambda a: self.pulls_from(prefix, short, a)}

    def object_at(self, oid: str | None, expression: str | None) -> dict[str, Any] | None:
        if oid is not None:
            return self.object(oid)
        if expression and not expression.startswith("-"):  # never an option to rev-parse
            return self.object(self.git.resolve(expression) or "")
        return None

    def object(self, sha: str, kind: str | None = None) -> dict[str, Any] | None:
        kind = kind or self.git.object_type(sha)
        if kind == "commit":
            return self.commit(sha)
        if kind == "blob":
            return self.blob(sha)
        if kind in ("tree", "tag"):
            return {"__typename": kind.capitalize(), "oid": sha, "abbreviatedOid": sha[:7]}
        return None

    def commit(self, sha: str) -> dict[str, Any]:
        info: dict[str, Any] = {}

        def read(key: str) -> Any:
            if not info:
                info.update(self.git.commit_info(sha))
            return info[key]

        return {"__typename": "Commit", "oid": sha, "abbreviatedOid": sha[:7],
                "message": lambda a: read("message"),
                "tree": lambda a: {"__typename": "Tree", "oid": read("tree"),
                                   "abbreviatedOid": read("tree")[:7]},
                "parents": lambda a: _page([self.commit(p) for p in read("parents")], a,
                                           "parents"),
                "file": lambda a: self.tree_entry(sha, a["path"])}

    def tree_entry(self, commit: str, path: str) -> dict[str, Any] | None:
        path = path.strip("/")
        if not path:
            return None
        out = self.git.git("ls-tree", "-z", commit, "--", path, check=False)
        for rec in out.split(b"\0"):
            meta, _, name = rec.partition(b"\t")
            if rec and name.decode(errors="replace") == path:
                mode, kind, sha = meta.decode().split()
                return {"__typename": "TreeEntry", "oid": sha, "path": path,
                        "name": path.rsplit("/", 1)[-1], "mode": int(mode, 8), "type": kind,
                        "object": lambda a, sha=sha, kind=kind: self.object(sha, kind)}
        return None

    def blob(self, sha: str) -> dict[str, Any]:
        def data() -> bytes:
            if sha not in self._blobs:
                self._blobs[sha] = self.git.read_blob(sha)
            return self._blobs[sha]

        def text(a: dict[str, Any]) -> str | None:
            # GitHub: "UTF8 text data or null if the Blob is binary". Binary here means not
            # UTF-8 or holding a NUL byte; the cut drops at most one split character.
            raw = data()
            if is_binary(a):
                return None
            return raw[:BLOB_TEXT_LIMIT].decode("utf-8", errors="ignore")

        def is_binary(a: dict[str, Any]) -> bool:
            raw = data()
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return True
            return b"\0" in raw

        return {"__typename": "Blob", "oid": sha, "abbreviatedOid": sha[:7], "text": text,
                "isBinary": is_binary, "byteSize": lambda a: len(data()),
                "isTruncated": lambda a: not is_binary(a) and len(data()) > BLOB_TEXT_LIMIT}

    def pulls_from(self, prefix: str, branch: str, args: dict[str, Any]) -> dict[str, Any]:
        """The pull requests whose head is this branch of this repository."""
        states = set(args.get("states") or ("OPEN", "CLOSED", "MERGED"))
        with self.shape.s.lock:
            pulls = sorted((p for p in self.repo.pulls
                            if prefix == "refs/heads/" and p["head_ref"] == branch
                            and not p.get("head_repo")  # a fork's branch is not this one
                            and self._pull_state(p) in states
                            and args.get("headRefName") in (None, branch)
                            and args.get("baseRefName") in (None, p["base_ref"])),
                           key=lambda p: p["number"])
        return _page([self.pull(p) for p in pulls], args, "associatedPullRequests")

    @staticmethod
    def _pull_state(p: dict[str, Any]) -> str:
        return "MERGED" if p.get("merged") else p["state"].upper()

    def pull(self, p: dict[str, Any]) -> dict[str, Any]:
        login = p["user"] or ""
        # GraphQL names an App by its slug alone; REST says "slug[bot]".
        author = ({"__typename": "Bot", "login": login.removesuffix("[bot]")}
                  if login.endswith("[bot]") else {"__typename": "User", "login": login})
        return {"__typename": "PullRequest", "number": p["number"],
                "url": self.shape.pull_html_url(self.repo, p["number"]), "title": p["title"],
                "body": p["body"] or "", "baseRefName": p["base_ref"],
                "headRefName": p["head_ref"],
                "headRefOid": (None if p.get("head_repo")  # a fork's head: kept in head_sha
                               else self.refs().get(f"refs/heads/{p['head_ref']}"))
                              or p["head_sha"],
                "state": self._pull_state(p), "author": author}


class GraphQL:
    """POST /graphql: every query is parsed and validated against GitHub's schema, then run
    over GraphQLNodes. Answers are GitHub's: HTTP 200 with `errors` for a bad query, `data`
    beside `errors` when only part of it failed."""

    def __init__(self, state: State, shape: Shapes) -> None:
        self.s = state
        self.shape = shape
        self._checked: dict[str, tuple[DocumentNode | None, list[dict[str, Any]]]] = {}

    def answer(self, req: Request) -> tuple[int, Any]:
        body = req.body if isinstance(req.body, dict) else {}
        query = body.get("query")
        if not isinstance(query, str):
            return 200, {"errors": [
                {"message": "A query attribute must be specified and must be a string."}]}
        schema = load_graphql_schema()
        document, errors = self._check(schema, query)
        if document is None:
            return 200, {"errors": errors}
        operation = get_operation_ast(document, body.get("operationName"))
        if operation is None:
            return 200, {"errors": [{"message": "An operation name is required"
                                     if body.get("operationName") is None
                                     else f"No operation named {body['operationName']!r}"}]}
        if operation.operation != OperationType.QUERY:
            return 200, {"errors": [{"message": f"{operation.operation.value}s are not emulated",
                                     "locations": [_location(operation)]}]}
        result = execute(schema, document, root_value={"repository": self._repository},
                         variable_values=body.get("variables") or {},
                         operation_name=body.get("operationName"), field_resolver=_resolve_field)
        assert not isinstance(result, Awaitable)  # every resolver here is synchronous
        out: dict[str, Any] = {}
        if result.data is not None:
            out["data"] = result.data
        if result.errors:
            out["errors"] = [_error(e) for e in result.errors]
        return 200, out

    def _check(self, schema: GraphQLSchema, query: str
               ) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
        """Parse and validate, remembered by query text: clients send the same few queries."""
        checked = self._checked.get(query)
        if checked is None:
            try:
                document = parse(query)
            except GraphQLError as exc:
                checked = (None, [_error(exc)])
            else:
                errors = [_error(e) for e in validate(schema, document)]
                checked = (None, errors) if errors else (document, [])
            with self.s.lock:
                if len(self._checked) >= 256:
                    self._checked.clear()
                self._checked[query] = checked
        return checked

    def _repository(self, args: dict[str, Any]) -> dict[str, Any]:
        found = self.s.repos.get(f"{args['owner']}/{args['name']}".lower())
        if found is None:
            raise GraphQLError(f"Could not resolve to a Repository with the name "
                               f"'{args['owner']}/{args['name']}'.",
                               extensions={"type": "NOT_FOUND"})
        return GraphQLNodes(self.shape, found).repository()


def _location(node: Node) -> dict[str, int]:
    assert node.loc is not None
    where = get_location(node.loc.source, node.loc.start)
    return {"line": where.line, "column": where.column}


def _error(exc: GraphQLError) -> dict[str, Any]:
    """GitHub's error shape: message, locations, path, and NOT_FOUND-style `type` at the top
    level (PyGithub turns a lone NOT_FOUND into UnknownObjectException)."""
    out: dict[str, Any] = {"message": exc.message}
    if exc.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in exc.locations]
    if exc.path:
        out["path"] = list(exc.path)
    if exc.extensions and "type" in exc.extensions:
        out["type"] = exc.extensions["type"]
    return out


