"""Shared by the drift and monitor credential tests (issue 15): the retrain Secret as the
CronJobs mount it, the rendered CronJobs, and a pod's environment replayed on this machine."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from mlgen.project import render_artifacts
from mlgen.spec import Spec

from tests.helpers import EXAMPLES

MOUNT = "/var/run/secrets/mlgen/retrain"  # where the CronJobs mount Secret <name>-retrain
KEYS = {"jenkins": ["JENKINS_USER", "JENKINS_API_TOKEN"], "github": ["GITHUB_TOKEN"]}


def cronjobs(data: dict[str, Any], project: Path = EXAMPLES / "credit-risk"
             ) -> dict[str, dict[str, Any]]:
    """The CronJobs the real renderer makes for spec `data` in `project`, by file name."""
    spec = Spec.model_validate(data)
    return {a.path.rsplit("/", 1)[-1]: yaml.safe_load(a.text)
            for a in render_artifacts(spec, project)
            if a.path.startswith("k8s/base/cronjob-")}


def pod(job: dict[str, Any]) -> dict[str, Any]:
    pod_spec: dict[str, Any] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod_spec


def secret_files(folder: Path, values: dict[str, str]) -> dict[str, str]:
    """The Secret's files as the kubelet mounts them (`--from-file` keeps a trailing newline),
    and the *_FILE variables the CronJob sets."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in values.items():
        (folder / key).write_text(value + "\n")
    return {f"{key}_FILE": str(folder / key) for key in values}


def pod_env(container: dict[str, Any], mounted_at: Path) -> dict[str, str]:
    """The container's `env`, with the Secret's mount path moved to `mounted_at`: what the
    process in the pod sees, for running the same command here."""
    return {e["name"]: e["value"].replace(MOUNT, str(mounted_at))
            for e in container.get("env", [])}


def assert_mounts_the_secret(job: dict[str, Any], hook: str, name: str) -> None:
    """The CronJob's pod reads Secret `<name>-retrain` read-only, through *_FILE variables, and
    a missing Secret is a FailedMount event (not optional)."""
    spec = pod(job)
    [container] = spec["containers"]
    assert container["env"] == [{"name": f"{key}_FILE", "value": f"{MOUNT}/{key}"}
                                for key in KEYS[hook]]
    assert {"name": "retrain-credentials", "mountPath": MOUNT,
            "readOnly": True} in container["volumeMounts"]
    [volume] = [v for v in spec["volumes"] if v["name"] == "retrain-credentials"]
    assert volume["secret"] == {"secretName": f"{name}-retrain", "defaultMode": 0o440,
                                "items": [{"key": key, "path": key} for key in KEYS[hook]]}
    assert spec["automountServiceAccountToken"] is False
