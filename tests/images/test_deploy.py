"""`mlgen deploy`: the overlay is built by the real `kubectl kustomize` and pinned to the digest.

Only the build step uses kubectl; applying, waiting and rolling back go through the
`kubernetes` client and are tested against the API emulator in tests/deliver; the pod side
of a deployment is proven by tests/e2e under `podman kube play`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import run_mlgen

DIGEST = "sha256:" + "ab" * 32


def mlgen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_mlgen(*args, env=env, timeout=120)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (it builds the overlays)")
    root = tmp_path_factory.mktemp("deploy") / "fraud-score"
    out = mlgen("init", str(root), "--name", "fraud-score", "--registry", "registry.bank.internal",
                "--non-interactive")
    assert out.returncode == 0, out.stderr
    return root


def workload_images(manifests: str) -> set[str]:
    images: set[str] = set()
    for doc in yaml.safe_load_all(manifests):
        if not doc:
            continue
        spec = doc.get("spec", {})
        pod = (spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
               or {}).get("spec", {})
        images.update(c["image"] for c in pod.get("containers", []))
    return images


def test_dry_run_pins_the_server_and_the_drift_job_to_the_digest(project: Path) -> None:
    out = mlgen("-C", str(project), "deploy", "dev", "--digest", DIGEST, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert workload_images(out.stdout) == {f"registry.bank.internal/fraud-score@{DIGEST}"}
    assert "mlgen.dev/environment: dev" in out.stdout
    # The committed overlay is untouched: pinning happens in a throwaway layer.
    assert DIGEST not in (project / "k8s/overlays/dev/kustomization.yaml").read_text()


def test_digest_file_names_the_repository_that_was_pushed(project: Path, tmp_path: Path) -> None:
    digest_file = tmp_path / "image.json"
    digest_file.write_text(json.dumps({"image": "mirror.bank.internal/ml/fraud-score",
                                       "tag": "0.1.0", "digest": DIGEST}))
    out = mlgen(
        "-C", str(project), "deploy", "staging", "--digest-file", str(digest_file), "--dry-run"
    )
    assert out.returncode == 0, out.stderr
    assert workload_images(out.stdout) == {f"mirror.bank.internal/ml/fraud-score@{DIGEST}"}


@pytest.mark.parametrize("args, message", [
    (["qa", "--digest", DIGEST], "unknown environment 'qa'"),
    (["dev", "--digest", "sha256:abc"], "is not of the form sha256:"),
    (["dev"], "exactly one of --digest"),
    (["dev", "--digest-file", "/nonexistent/image.json"], "does not exist"),
])
def test_usage_errors_name_the_problem(project: Path, args: list[str], message: str) -> None:
    out = mlgen("-C", str(project), "deploy", *args, "--dry-run")
    assert out.returncode == 2
    assert message in out.stderr
