"""The git side of `mlgen gitops pin`: one commit of the pin, and a push that survives races.

git runs as a subprocess (it is already a requirement of every repository mlgen serves; see
`mlgen.sync.merge`). Credentials never reach a command line: git's own (credential helper,
SSH agent) are used, or, when `MLGEN_GIT_PASSWORD` is set (CI maps its token there), a
credential helper passed through git's GIT_CONFIG_* environment that reads the token from
the environment when git asks; the helper's text holds only the variable's name.

`--push` never touches the checkout the pipeline runs in (a tag build sits on a detached tag):
it fetches the branch Argo CD tracks into a temporary worktree, pins there, commits and pushes
`HEAD:refs/heads/BRANCH`. Someone else pushed first? Fetch again and pin again (the pin is
idempotent), up to three times.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import MlgenError, UsageError
from .gitops import PinPlan, lock_root

PUSH_ATTEMPTS = 3
TOKEN_ENV = "MLGEN_GIT_PASSWORD"
USERNAME_ENV = "MLGEN_GIT_USERNAME"
# Answers git's `get` with the username and the token from the environment; `$1` is the
# action git asks for (get, store, erase). Only variable names are in this text.
CREDENTIAL_HELPER = (f'!f() {{ test "$1" = get || exit 0; '
                     f'echo "username=${{{USERNAME_ENV}:-x-access-token}}"; '
                     f'echo "password=${{{TOKEN_ENV}}}"; }}; f')
FALLBACK_IDENTITY = ("mlgen", "mlgen@localhost")


class GitError(MlgenError):
    """A git command failed (exit 1); the message quotes git's own words."""


@dataclass(frozen=True)
class PushResult:
    commit: str | None  # None: the branch already had this digest
    branch: str
    remote: str
    attempts: int


def git_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs with: no prompts, and the token helper when a token is set."""
    env = dict(os.environ if base is None else base)
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    if env.get(TOKEN_ENV):
        count = int(env.get("GIT_CONFIG_COUNT", "0") or "0")
        # An empty helper first resets the list, so only ours answers.
        for offset, value in enumerate(("", CREDENTIAL_HELPER)):
            env[f"GIT_CONFIG_KEY_{count + offset}"] = "credential.helper"
            env[f"GIT_CONFIG_VALUE_{count + offset}"] = value
        env["GIT_CONFIG_COUNT"] = str(count + 2)
    return env


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("git")
    if exe is None:
        raise UsageError("mlgen gitops --commit needs git on PATH")
    proc = subprocess.run([exe, *args], cwd=cwd, env=git_env(), capture_output=True,
                          text=True, check=False, timeout=300)
    if check and proc.returncode != 0:
        detail = " ".join((proc.stderr or proc.stdout).split())[:600]
        raise GitError(f"git {args[0]} failed in {cwd}: {detail}")
    return proc


def _identity(cwd: Path) -> list[str]:
    """`-c user.*` options when neither git config nor the environment names an author."""
    if os.environ.get("GIT_AUTHOR_EMAIL") or git(cwd, "config", "user.email",
                                                 check=False).stdout.strip():
        return []
    name, email = FALLBACK_IDENTITY
    return ["-c", f"user.name={name}", "-c", f"user.email={email}"]


def commit_pin(project: Path, plan: PinPlan) -> str | None:
    """Commit the pin's files (only those) in the repository holding `project`; its sha."""
    if not plan.changed:
        return None
    if git(project, "rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        raise UsageError(f"--commit: {project} is not inside a git repository")
    paths = [w.path for w in plan.writes]  # relative to the lock's folder (a monorepo's root)
    top = lock_root(project)
    git(top, "add", "--", *paths)
    git(top, *_identity(top), "commit", "--quiet", "--no-verify",
        "-m", plan.commit_message(), "--", *paths)
    return git(project, "rev-parse", "HEAD").stdout.strip()


def pin_and_push(project: Path, make_plan: Callable[[Path], PinPlan],
                 apply: Callable[[Path, PinPlan], None], remote: str,
                 branch: str) -> tuple[PinPlan, PushResult]:
    """Pin on top of `remote`/`branch` in a throwaway worktree, commit, push; retry races."""
    top = Path(git(project, "rev-parse", "--show-toplevel").stdout.strip())
    prefix = git(project, "rev-parse", "--show-prefix").stdout.strip()
    shallow = git(top, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        git(top, "fetch", "--quiet", "--no-tags", *(["--depth=1"] if shallow else []),
            remote, f"refs/heads/{branch}")
        tree = Path(tempfile.mkdtemp(prefix="mlgen-gitops-"))
        try:
            git(top, "worktree", "add", "--quiet", "--detach", str(tree), "FETCH_HEAD")
            where = tree / prefix
            plan = make_plan(where)
            if not plan.changed:
                return plan, PushResult(None, branch, remote, attempt)
            apply(where, plan)
            sha = commit_pin(where, plan)
            pushed = git(tree, "push", "--quiet", remote, f"HEAD:refs/heads/{branch}",
                         check=False)
            if pushed.returncode == 0:
                return plan, PushResult(sha, branch, remote, attempt)
            words = pushed.stderr + pushed.stdout
            if not any(w in words for w in ("fetch first", "non-fast-forward", "rejected")):
                detail = " ".join(words.split())[:600]
                raise GitError(f"git push to {remote} {branch} failed: {detail}")
        finally:
            git(top, "worktree", "remove", "--force", str(tree), check=False)
            shutil.rmtree(tree, ignore_errors=True)
    raise GitError(f"git push to {remote} {branch} was rejected {PUSH_ATTEMPTS} times "
                   "(others kept pushing first); run the pin again")
