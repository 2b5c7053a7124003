"""deploy/bot/ (the webhook bot's Dockerfile and Kubernetes manifests) passes the checks
`mlgen validate` runs on generated files: the same tool wrappers, through the same runner."""
from __future__ import annotations

import re
from pathlib import Path

import yaml
from mlgen.validate import checkov, hadolint, kubernetes, yamllint
from mlgen.validate.model import Workspace
from mlgen.validate.runner import run_checks

from tests.helpers import REPO as REPO_ROOT
from tests.validate.helpers import need

ROOT = REPO_ROOT
BOT = "deploy/bot"
K8S = f"{BOT}/k8s"
TOOLS = (hadolint.NAME, yamllint.NAME, kubernetes.KUSTOMIZE, kubernetes.VALIDATE, checkov.NAME)
# Every inline skip, with why: a new one must be added here on purpose.
EXPECTED_SKIPS = {"CKV_DOCKER_7", "CKV_K8S_35", "CKV_K8S_43"}


def _manifests() -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / K8S).glob("*.yaml"))


def _docs(rel: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((ROOT / rel).read_text(encoding="utf-8")) if d]


def test_bot_deploy_files_pass_every_validate_tool(tmp_path: Path) -> None:
    need("hadolint", "yamllint", "kubectl", "kubernetes-validate", "checkov")
    manifests = _manifests()
    ws = Workspace(
        root=ROOT,
        scratch=tmp_path,
        yaml_files=tuple(manifests),
        dockerfiles=(f"{BOT}/Dockerfile",),
        k8s_resources=tuple(m for m in manifests if not m.endswith("/kustomization.yaml")),
        k8s_overlays=(K8S,),
    )
    report = run_checks(ws, TOOLS)

    assert {t.tool: t.status for t in report.tools} == {name: "ran" for name in TOOLS}
    assert [f.as_dict() for f in report.findings] == []
    # Custom resources would be "not validated": the bot uses none, so every note is a skip.
    assert {n.kind for n in report.notes} <= {"suppressed"}
    skipped = {n.message.split(" ", 1)[0] for n in report.notes}
    assert skipped == EXPECTED_SKIPS
    # kubernetes-validate saw the kustomize build too, not only the base files.
    assert (tmp_path / "kustomize").is_dir() and any((tmp_path / "kustomize").iterdir())


def test_kustomization_lists_every_manifest() -> None:
    listed = set(_docs(f"{K8S}/kustomization.yaml")[0]["resources"])
    on_disk = {Path(m).name for m in _manifests()} - {"kustomization.yaml"}
    assert listed == on_disk


def test_deployment_is_one_recreated_replica_with_secrets_by_reference() -> None:
    (deploy,) = _docs(f"{K8S}/deployment.yaml")
    spec = deploy["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "mlgen-bot"}}]
    assert "env" not in container  # no literal values, secret or not
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    db_claim = volumes[mounts["/var/lib/mlgen-bot"]]["persistentVolumeClaim"]["claimName"]
    assert db_claim == _docs(f"{K8S}/persistentvolumeclaim.yaml")[0]["metadata"]["name"]
    # Nothing in deploy/ looks like a committed credential.
    for path in (ROOT / BOT).rglob("*"):
        if path.is_file() and path.suffix in ("", ".yaml", ".md"):
            assert not re.search(r"BEGIN [A-Z ]*PRIVATE KEY|gh[pousr]_[A-Za-z0-9]{20,}",
                                 path.read_text(encoding="utf-8")), path


def test_dockerfile_runs_the_bot_as_user_10001_on_the_db_volume() -> None:
    text = (ROOT / BOT / "Dockerfile").read_text(encoding="utf-8")
    assert "\nUSER 10001:10001\n" in text
    assert ('ENTRYPOINT ["mlgen", "bot", "serve", "--host", "0.0.0.0", "--port", "8080", '
            '"--db", "/var/lib/mlgen-bot/bot.sqlite"]') in text
    assert "http://127.0.0.1:8080/healthz" in text
