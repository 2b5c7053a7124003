"""Retrain hooks: what `mlgen drift` calls when the spec's `drift.on_drift` holds `retrain`.

A hook is anything with `trigger(reason, details) -> str` (a URL or an id of what it started).
`HOOKS` maps a name (the spec's `drift.retrain_hook`) to a factory taking the loaded Spec (or
None when drift runs on explicit files) and returning a hook. A factory may also be given as a
"module:attribute" string, imported only when that hook is used, so registering the Jenkins or
GitHub hook costs nothing at startup and needs no import of python-jenkins or PyGithub here:

    HOOKS["jenkins"] = "mlgen.integrations.jenkins_retrain:make_hook"

The built-in "command" hook runs the spec's `drift.retrain_command` through the shell, with the
reason and a JSON summary in its environment (MLGEN_DRIFT_REASON, MLGEN_DRIFT_DETAILS).
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from ..errors import MlgenError, UsageError


@runtime_checkable
class RetrainHook(Protocol):
    def trigger(self, reason: str, details: dict[str, Any]) -> str:
        """Start a retraining; return a URL or an id a person can follow."""
        ...


HookFactory = Callable[[Any], RetrainHook]


class RetrainError(MlgenError):
    """The hook could not start a retraining (the drift report records it)."""


def reason_with_features(reason: str, details: Any, limit: int) -> str:
    """The retrain reason a hook sends: the reason plus the drifted features, cut to `limit`."""
    drifted = details.get("drifted") if isinstance(details, dict) else None
    summary = f"{reason} (drifted: {json.dumps(drifted, default=str)})" if drifted else reason
    return summary[:limit]


@dataclass(frozen=True)
class CommandHook:
    """Runs a shell command from the spec; its first line of output is returned as the id.

    It runs in the model repository (`cwd`, the -C folder), so a command such as
    `mlgen run train` or `./scripts/retrain.sh` means the same from a CronJob (-C /app) as
    from a laptop, whatever folder `mlgen drift` was started in.
    """

    command: str
    timeout: float = 600.0
    cwd: str | None = None

    def trigger(self, reason: str, details: dict[str, Any]) -> str:
        env = {**os.environ, "MLGEN_DRIFT_REASON": reason,
               "MLGEN_DRIFT_DETAILS": json.dumps(details, sort_keys=True, default=str)}
        try:
            done = subprocess.run(
                self.command, shell=True, env=env, capture_output=True, text=True,
                timeout=self.timeout, check=False, cwd=self.cwd,
            )
        except subprocess.TimeoutExpired as exc:
            raise RetrainError(
                f"drift.retrain_command timed out after {self.timeout:.0f} s"
            ) from exc
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RetrainError(f"drift.retrain_command exited {done.returncode}: {tail[0][:300]}")
        out = done.stdout.strip().splitlines()
        return out[0] if out else f"command exited 0: {self.command}"


def _command_factory(spec: Any) -> RetrainHook:
    command = getattr(getattr(spec, "drift", None), "retrain_command", None)
    if not command:
        raise UsageError("drift.retrain_hook is 'command' but drift.retrain_command is empty: "
                         "set the shell command that starts a retraining")
    return CommandHook(command)


HOOKS: dict[str, HookFactory | str] = {
    "command": _command_factory,
    "jenkins": "mlgen.publish.jenkins.retrain:make_hook",
    "github": "mlgen.publish.github.retrain:make_hook",
}


def start_retrain(name: str, spec: Any, reason: str, details: Mapping[str, Any], *,
                  project_dir: str | os.PathLike[str] | None = None) -> str:
    """Build the hook `name` and start a retraining: what drift's and monitor's retrain
    actions both do. Any failure (an unknown hook, the server's answer, a command that cannot
    start) is a RetrainError with the same message, so callers catch one type."""
    try:
        return get_hook(name, spec, project_dir=project_dir).trigger(reason, dict(details))
    except RetrainError:
        raise
    except (MlgenError, OSError) as exc:
        raise RetrainError(str(exc)) from exc


def register(name: str, factory: HookFactory | str) -> None:
    HOOKS[name] = factory


def get_hook(name: str, spec: Any, hooks: Mapping[str, HookFactory | str] | None = None, *,
             project_dir: str | os.PathLike[str] | None = None) -> RetrainHook:
    """The hook `name` built for `spec`; a command hook runs in `project_dir` (the -C folder)."""
    registry = HOOKS if hooks is None else hooks
    entry = registry.get(name)
    if entry is None:
        raise UsageError(f"drift.retrain_hook: no retrain hook named {name!r}; known: "
                         + ", ".join(sorted(registry)))
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    hook = entry(spec)
    if not isinstance(hook, RetrainHook):
        raise UsageError(f"retrain hook {name!r} has no trigger(reason, details) method")
    if isinstance(hook, CommandHook) and project_dir is not None and hook.cwd is None:
        hook = replace(hook, cwd=str(project_dir))
    return hook
