"""A secret from the environment, or from the file a `<NAME>_FILE` variable names.

Kubernetes mounts a Secret as files (a Secret in an env var is visible to anything that can
read the pod spec or /proc, and checkov's CKV_K8S_35 flags it), so the CronJobs set
`JENKINS_API_TOKEN_FILE=/var/run/secrets/mlgen/retrain/JENKINS_API_TOKEN` instead of the
token itself. The Jenkins and GitHub connections read their secrets through `env_secret`, so
both spellings work everywhere. Errors name the variable and the path, never the content.
"""
from __future__ import annotations

from collections.abc import Mapping

from .errors import UsageError


def env_secret(env: Mapping[str, str], name: str) -> str | None:
    """`env[name]` when set, else the content of the file `env[name + "_FILE"]` without its
    trailing newline (as `kubectl create secret --from-file` or `echo > file` leaves it),
    else None. A named file that is missing, unreadable or empty is an error: the platform
    meant to give a secret and the pod did not get it."""
    value = env.get(name)
    if value:
        return value
    path = env.get(name + "_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            content = fh.read().rstrip("\r\n")
    except OSError as exc:
        raise UsageError(f"{name}_FILE={path}: cannot read the file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}_FILE={path}: the file is not UTF-8 text") from exc
    if not content.strip():
        raise UsageError(f"{name}_FILE={path}: the file is empty; put the {name} in it")
    return content


def secret_source(env: Mapping[str, str], name: str) -> str:
    """Where `env_secret(env, name)` reads the secret, for an error's "check ..." hint: `name`,
    or `NAME_FILE=path` when the file is used (a pod has no `name` variable to check)."""
    path = env.get(name + "_FILE")
    return f"{name}_FILE={path}" if path and not env.get(name) else name
