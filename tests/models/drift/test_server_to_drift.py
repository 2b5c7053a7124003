"""Issue 6's "done when": the CronJob's command runs `mlgen drift` on the logs of the real server.

A fresh `mlgen init` project trains (writing the model and the reference profile), the real
`mlgen serve` process answers HTTP traffic and writes its sampled request log, and the command
read from the rendered k8s/base/cronjob-drift.yaml (only its paths adapted to this machine) judges
that log: first a window drawn from the training distribution (exit 0), then, after the log is
moved aside as a log shipper would, a window with drift planted in 3 of the 6 features (exit 1).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the model runtime extra (mlgen[runtime]) is not installed")
pytest.importorskip("httptools", reason="the model runtime extra (mlgen[runtime]) is not installed")
pytest.importorskip("pyarrow", reason="the model runtime extra (mlgen[runtime]) is not installed")
pytest.importorskip("scipy", reason="the model runtime extra (mlgen[runtime]) is not installed")

import yaml
from mlgen.cli import main

from tests.helpers import MLGEN_SCRIPT, run_mlgen
from tests.models.serving.helpers import REPO, Server, free_port

MLGEN = MLGEN_SCRIPT
NAME = "credit-drift"
ROWS = 1_500  # per window; well above drift.min_rows, small enough to send in a second
PLANTED = ("debt_ratio", "income", "region")  # 3 of 6 features: share 0.5 = the threshold
CATEGORICAL = ("employment_type", "region")  # as the scaffolded mlgen.yaml declares them


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mlgen("-C", str(root), *args, script=True)


def _cronjob_command(root: Path, log_dir: Path) -> list[str]:
    """The drift container's command + args from the rendered CronJob, with its paths mapped
    onto this machine: the image's mlgen, the project for /app, `log_dir` for the log volume."""
    doc = yaml.safe_load((root / "k8s" / "base" / "cronjob-drift.yaml").read_text())
    (container,) = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["request-log"]
    command = [str(MLGEN), *container["command"][1:], *container["args"]]
    assert container["command"][0].endswith("/mlgen")
    out = []
    for arg in command:
        if arg == "/app":
            arg = str(root)
        elif arg == mounted or arg.startswith(mounted + "/"):
            arg = str(log_dir) + arg[len(mounted):]
        out.append(arg)
    return out


def _traffic(root: Path, seed: int, *, drift: bool) -> list[dict[str, Any]]:
    """Rows from the project's own data generator (another seed than training), some shifted."""
    path = root / "src" / NAME.replace("-", "_") / "data.py"
    spec = importlib.util.spec_from_file_location("scaffolded_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    frame = module.generate(ROWS, seed=seed).drop(columns=[module.TARGET])
    if drift:
        import numpy as np

        rng = np.random.default_rng(seed)
        frame["income"] = frame["income"] * 1.8  # inflation, or a new customer segment
        frame["debt_ratio"] = frame["debt_ratio"] + 0.25
        frame["region"] = rng.choice(["north", "south", "east", "west", "central"], size=ROWS,
                                     p=[0.70, 0.05, 0.05, 0.05, 0.15])
    records = frame.to_dict("records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in records]


def _send(server: Server, rows: list[dict[str, Any]]) -> None:
    """Half through POST /predict, half through the V2 infer endpoint, 100 rows a request."""
    for i, start in enumerate(range(0, len(rows), 100)):
        batch = rows[start:start + 100]
        if i % 2 == 0:
            resp = server.request("POST", "/predict", {"instances": batch})
        else:
            inputs: list[dict[str, Any]] = [
                {"name": f, "datatype": "BYTES" if f in CATEGORICAL else "FP64",
                 "shape": [len(batch)], "data": [r[f] for r in batch]} for f in batch[0]]
            for inp in inputs:
                if inp["datatype"] == "BYTES":
                    inp["parameters"] = {"content_type": "str"}
            resp = server.request("POST", f"/v2/models/{NAME}/infer",
                                  {"parameters": {"content_type": "pd"}, "inputs": inputs})
        assert resp.status == 200, resp.body[:500]


def _wait_for_lines(path: Path, n: int, timeout: float = 20.0) -> None:
    """The server flushes its log about once a second: wait until every row is on disk."""
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = sum(1 for _ in path.open("rb")) if path.exists() else 0
        if count >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path}: {count} of {n} logged rows after {timeout} s")


def _read_prom(path: Path) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in path.read_text().splitlines() if line and not line.startswith("#")}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drift-e2e") / NAME
    assert main(["init", str(root), "--name", NAME, "--non-interactive"]) == 0
    spec = root / "mlgen.yaml"
    text = spec.read_text()
    assert "  on_drift: [alert]\n" in text
    # Metrics for node-exporter's textfile collector, as a cluster without a Pushgateway has them.
    spec.write_text(text.replace("  on_drift: [alert]\n",
                                 "  on_drift: [alert]\n  textfile_dir: metrics\n"))
    assert yaml.safe_load(text)["model"]["features"]["categorical"] == list(CATEGORICAL)
    for step in (("run", "data"), ("run", "train")):
        done = _run(root, *step)
        assert done.returncode == 0, (step, done.stdout, done.stderr)
    assert (root / "artifacts" / "model.joblib").exists()
    assert (root / "artifacts" / "reference_profile.json").exists()
    return root


def test_cronjob_command_judges_the_real_servers_request_log(project: Path, tmp_path: Path) -> None:
    log_dir = tmp_path / "requests"
    command = _cronjob_command(project, log_dir)
    (option,) = [a for a in command if a in ("--report-dir", "--output-dir", "-o")]
    report_dir = Path(command[command.index(option) + 1])
    assert command[command.index("--current") + 1] == str(log_dir)

    port = free_port()
    serve_log = tmp_path / "serve.log"
    with serve_log.open("wb") as out:
        proc = subprocess.Popen(
            [str(MLGEN), "-C", str(project), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--request-log", str(log_dir), "--sample-rate", "1.0", "--workers", "1"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "LOG_LEVEL": "info"})
    server = Server(proc, port, serve_log)
    try:
        server.wait_for("/v2/health/ready", 200)

        # 1. A window from the training distribution: no drift, exit 0.
        _send(server, _traffic(project, seed=101, drift=False))
        _wait_for_lines(log_dir / "requests.jsonl", ROWS)
        calm = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert calm.returncode == 0, (calm.stdout, calm.stderr)
        report = json.loads((report_dir / "drift-report.json").read_text())
        assert report["exit_code"] == 0 and report["dataset"]["drift"] is False
        assert report["dataset"]["drifted_features"] == []
        assert report["current"]["rows"] == ROWS and report["dataset"]["evaluated"] == 6
        assert "no dataset drift" in (report_dir / "drift-report.md").read_text()
        prom = _read_prom(project / "metrics" / f"mlgen_drift_{NAME}.prom")
        assert prom[f'mlgen_drift_detected{{model="{NAME}"}}'] == 0.0
        assert prom[f'mlgen_drift_run_status{{model="{NAME}"}}'] == 0.0
        first_success = prom[f'mlgen_drift_last_success_timestamp_seconds{{model="{NAME}"}}']

        # 2. The calm window is shipped away (the server reopens its log), then drifted traffic.
        archive = tmp_path / "archive"
        archive.mkdir()
        (log_dir / "requests.jsonl").rename(archive / "requests.jsonl")
        _send(server, _traffic(project, seed=202, drift=True))
        _wait_for_lines(log_dir / "requests.jsonl", ROWS)
        drifted = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert drifted.returncode == 1, (drifted.stdout, drifted.stderr)
        assert f"DRIFT ALERT [{NAME}]" in drifted.stderr  # on_drift: [alert]
    finally:
        assert server.stop() == 0, server.log()

    report = json.loads((report_dir / "drift-report.json").read_text())
    assert report["exit_code"] == 1 and report["dataset"]["drift"] is True
    assert sorted(report["dataset"]["drifted_features"]) == sorted(PLANTED)
    assert report["current"]["rows"] == ROWS and report["current"]["format"] == "jsonl"
    assert (
        report["model"] == NAME and report["settings"]["methods"]["numeric_used"] == "wasserstein"
    )
    by_name = {f["name"]: f for f in report["features"]}
    assert by_name["income"]["scores"]["wasserstein"] > 0.5  # a shift of ~1 reference std
    assert by_name["age"]["drifted"] is False and by_name["age"]["status"] == "ok"
    markdown = (report_dir / "drift-report.md").read_text()
    assert "**DRIFT: 3 of 6 features drifted" in markdown
    assert all(f"| `{name}` |" in markdown for name in by_name)
    html = (report_dir / "drift-report.html").read_text()
    assert html.count("<svg") == 3 and "<script" not in html
    prom = _read_prom(project / "metrics" / f"mlgen_drift_{NAME}.prom")
    assert prom[f'mlgen_drift_detected{{model="{NAME}"}}'] == 1.0
    assert prom[f'mlgen_drift_share{{model="{NAME}"}}'] == 0.5
    assert prom[f'mlgen_drift_rows{{model="{NAME}"}}'] == float(ROWS)
    for name in by_name:
        flag = prom[f'mlgen_drift_feature_drifted{{model="{NAME}",feature="{name}"}}']
        assert flag == (1.0 if name in PLANTED else 0.0), name
    assert prom[f'mlgen_drift_last_success_timestamp_seconds{{model="{NAME}"}}'] >= first_success
