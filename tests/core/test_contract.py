"""The rendered files, the spec's defaults and the running server agree with the runtime
contract (mlgen.models.contract), so a port or a path retyped in one place fails here."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from mlgen.models import contract

from tests.helpers import EXAMPLES, REPO
from tests.models.serving.helpers import start_server
from tests.models.serving.modelkit import train_model

SPEC_TEXT = """\
apiVersion: mlgen/v1
name: plain-model
model:
  features:
    numeric: [income]
kubernetes:
  prometheus_operator: true
"""


def _render(tmp_path: Path, spec_text: str) -> Path:
    from mlgen.project import load_project, render_artifacts

    (tmp_path / contract.SPEC_FILENAME).write_text(spec_text, encoding="utf-8")
    for artifact in render_artifacts(load_project(tmp_path), tmp_path):
        target = tmp_path / artifact.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(artifact.text, encoding="utf-8")
    return tmp_path


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _server_container(root: Path) -> dict[str, Any]:
    (deployment,) = _docs(root / "k8s" / "base" / "deployment.yaml")
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"]
                    if c["name"] != "drift"]
    return container


def _check_rendered(root: Path, port: int) -> None:
    container = _server_container(root)
    assert [p["containerPort"] for p in container["ports"]] == [port]
    probes = {kind: container[kind]["httpGet"]
              for kind in ("livenessProbe", "readinessProbe") if kind in container}
    assert probes["livenessProbe"]["path"] == contract.LIVE_PATH
    assert probes["readinessProbe"]["path"] == contract.READY_PATH
    for probe in probes.values():
        assert probe["port"] in (port, container["ports"][0].get("name"))
    (service,) = _docs(root / "k8s" / "base" / "service.yaml")
    assert [p["targetPort"] for p in service["spec"]["ports"]] in ([port], ["http"])
    (monitor,) = _docs(root / "k8s" / "monitoring" / "servicemonitor.yaml")
    assert [e["path"] for e in monitor["spec"]["endpoints"]] == [contract.METRICS_PATH]
    dockerfile = (root / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"^EXPOSE {port}$", dockerfile, re.MULTILINE)
    assert f"http://127.0.0.1:{port}{contract.READY_PATH}" in dockerfile


def test_a_spec_without_a_port_renders_the_contracts_port_and_paths(tmp_path: Path) -> None:
    _check_rendered(_render(tmp_path, SPEC_TEXT), contract.DEFAULT_PORT)


def test_the_committed_example_follows_the_contract() -> None:
    spec = yaml.safe_load((EXAMPLES / "credit-risk" / contract.SPEC_FILENAME).read_text())
    _check_rendered(EXAMPLES / "credit-risk", spec["serve"]["port"])


def test_the_spec_defaults_are_the_contracts() -> None:
    from mlgen.spec_runtime import DriftThresholds, RequestLog, Serve

    assert Serve().port == contract.DEFAULT_PORT
    log = RequestLog()
    assert (log.path, log.sample_rate, log.max_bytes, log.backups) == (
        contract.REQUEST_LOG_DIR, contract.REQUEST_LOG_SAMPLE_RATE,
        contract.REQUEST_LOG_MAX_BYTES, contract.REQUEST_LOG_BACKUPS)
    th = DriftThresholds()
    assert (th.psi, th.jensenshannon, th.wasserstein, th.ks_pvalue, th.chi2_pvalue, th.share,
            th.missing_rate) == (contract.DRIFT_PSI, contract.DRIFT_JENSENSHANNON,
                                 contract.DRIFT_WASSERSTEIN, contract.DRIFT_KS_PVALUE,
                                 contract.DRIFT_CHI2_PVALUE, contract.DRIFT_SHARE,
                                 contract.DRIFT_MISSING_RATE)


def test_the_server_answers_on_the_contracts_paths(tmp_path: Path) -> None:
    model = train_model(tmp_path / "model.joblib", rows=200)
    server = start_server(tmp_path, model, workers=1, name="credit-risk")
    try:
        server.wait_for(contract.READY_PATH, 200)
        for path in (contract.LIVE_PATH, contract.READY_PATH, contract.METRICS_PATH,
                     contract.SERVER_METADATA_PATH, contract.model_path("credit-risk"),
                     contract.model_ready_path("credit-risk")):
            assert server.request("GET", path).status == 200, path
        assert server.request("GET", "/v2/health/nowhere").status == 404
    finally:
        assert server.stop() == 0, server.log()


def test_the_contract_imports_only_the_standard_library() -> None:
    source = (REPO / "models" / "contract.py").read_text(encoding="utf-8")
    imported = set(re.findall(r"^(?:from|import) (\S+)", source, re.MULTILINE))
    assert imported <= {"__future__"}, imported
