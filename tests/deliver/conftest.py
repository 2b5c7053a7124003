"""The emulated cluster the delivery tests share: a Kubernetes emulator, a kubeconfig for it,
and mlgen run against it. Every stored object is schema-checked on the way out."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.emulators.kubernetes import ClusterState, KubernetesEmulator, public, schema_problems
from tests.helpers import run_mlgen

TOKEN = "k8s-test-token-6d1f0c2b9e"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[KubernetesEmulator, Path]]:
    state = ClusterState(tokens=(TOKEN,), ready_seconds=0.2)
    with KubernetesEmulator(state) as emulator:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulated",
            "clusters": [{"name": "emulated", "cluster": {"server": emulator.url}}],
            "users": [{"name": "deployer", "user": {"token": TOKEN}}],
            "contexts": [{"name": "emulated",
                          "context": {"cluster": "emulated", "user": "deployer"}}]}))
        yield emulator, kubeconfig
        # Everything answered was checked on the way out; check what is stored as well.
        for obj in list(state.objects.values()):
            state.schema_errors.extend(schema_problems(public(obj)))
        assert state.schema_errors == [], state.schema_errors[:5]


def mlgen(project: Path, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mlgen("-C", str(project), *args, extra_env={"KUBECONFIG": str(kubeconfig)},
                     timeout=120)
