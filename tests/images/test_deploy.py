"""`mlgen deploy`: the overlay is built by the real `kubectl kustomize` and pinned to the digest.

No cluster runs here, so the apply/rollout/exec calls go to a recording kubectl (MLGEN_KUBECTL)
that forwards `kustomize` to the real kubectl and writes down everything else; the pod side
of a deployment is proven by tests/e2e under `podman kube play`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
    out = mlgen("-C", str(project), "deploy", "staging", "--digest-file", str(digest_file), "--dry-run")
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


def test_deploy_applies_waits_for_the_rollout_and_smoke_tests(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "kubectl.log"
    shim = tmp_path / "kubectl"
    real = shutil.which("kubectl")
    # Records each call (argv and stdin) as one JSON line; `kustomize` goes to the real kubectl.
    shim.write_text(f"""#!{sys.executable}
import json, subprocess, sys
args = sys.argv[1:]
if args and args[0] == "kustomize":
    sys.exit(subprocess.call([{real!r}, *args]))
stdin = sys.stdin.read() if "-f" in args and "-" in args else ""
with open({str(log)!r}, "a") as fh:
    fh.write(json.dumps({{"args": args, "stdin": stdin}}) + "\\n")
print("ok: " + " ".join(args[:3]))
""")
    shim.chmod(0o755)
    env = dict(os.environ, MLGEN_KUBECTL=str(shim))
    out = mlgen("-C", str(project), "deploy", "prod", "--digest", DIGEST, "--smoke-test",
                "--timeout", "120", env=env)
    assert out.returncode == 0, out.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    verbs = [next(a for a in c["args"] if not a.startswith("-") and a != "fraud-score") for c in calls]
    assert verbs == ["apply", "rollout", "exec"]
    apply, rollout, smoke = calls
    assert workload_images(apply["stdin"]) == {f"registry.bank.internal/fraud-score@{DIGEST}"}
    assert rollout["args"] == ["-n", "fraud-score", "rollout", "status", "deployment/fraud-score",
                               "--timeout=120s"]
    assert smoke["args"][:6] == ["-n", "fraud-score", "exec", "deployment/fraud-score", "-c", "server"]
    assert "/v2/health/ready" in smoke["args"][-1]
    assert f"deployed registry.bank.internal/fraud-score@{DIGEST} to prod" in out.stdout


def test_failed_rollout_exits_1_and_says_where_to_look(project: Path, tmp_path: Path) -> None:
    shim = tmp_path / "kubectl"
    real = shutil.which("kubectl")
    shim.write_text(f"""#!{sys.executable}
import subprocess, sys
args = sys.argv[1:]
if args and args[0] == "kustomize":
    sys.exit(subprocess.call([{real!r}, *args]))
if "rollout" in args:
    print("error: deployment \\"fraud-score\\" exceeded its progress deadline", file=sys.stderr)
    sys.exit(1)
sys.stdin.read() if "apply" in args else None
print("pod/fraud-score-1 0/1 CrashLoopBackOff" if "get" in args else "ok")
""")
    shim.chmod(0o755)
    env = dict(os.environ, MLGEN_KUBECTL=str(shim))
    out = mlgen("-C", str(project), "deploy", "dev", "--digest", DIGEST, env=env)
    assert out.returncode == 1
    assert "exceeded its progress deadline" in out.stderr
    assert "CrashLoopBackOff" in out.stderr
    assert "describe deployment/fraud-score" in out.stderr
