"""`mlgen drift` end to end through the CLI entry point: exit codes, reports, metrics, actions."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from mlgen.cli import main
from mlgen.models.profile import write_profile
from mlgen.publish.retrain import HOOKS, CommandHook, get_hook

from tests.models.drift.helpers import (
    SHIFTED,
    frame,
    names,
    write_drifted_window,
    write_request_log,
)


def _rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    now = datetime.now(UTC)
    numeric, categorical = write_drifted_window(tmp_path, tmp_path / "logs", model="demo",
                                                ts=_rfc3339(now - timedelta(hours=1)))
    # Rows outside a 24h window, that only `--window all` reads:
    old = frame(np.random.default_rng(13), 3_000, numeric=4, categorical=2)
    write_request_log(old, tmp_path / "logs", ts=_rfc3339(now - timedelta(days=30)))
    (tmp_path / "mlgen.yaml").write_text(
        "apiVersion: mlgen/v1\nname: demo\nmodel:\n  task: classification\n  features:\n"
        f"    numeric: {numeric}\n    categorical: {categorical}\n"
        "drift:\n  window: 24h\n  current: logs\n  on_drift: [alert, retrain]\n"
        "  min_rows: 50\n  thresholds: {missing_rate: 0.2}\n"
        "  retrain_hook: command\n"
        "  retrain_command: pwd > retrain-cwd.txt;"
        f" echo \"run-42 $MLGEN_DRIFT_REASON\" > {tmp_path}/retrain.txt; echo run-42\n"
        "  textfile_dir: metrics\n".replace("'", '"')
    )
    return tmp_path


def test_explicit_files_json_and_no_drift_exit_0(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = project / "artifacts" / "reference_profile.json"
    frame(np.random.default_rng(1), 2_000, numeric=4, categorical=2).to_parquet(
        project / "same.parquet"
    )
    code = main(["drift", "--reference", str(ref), "--current", str(project / "same.parquet"),
                 "--json", "-o", str(project / "out")])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["exit_code"] == 0 and doc["dataset"]["drift"] is False
    assert doc["settings"]["methods"]["numeric_used"] == "wasserstein"
    assert {p.name for p in (project / "out").iterdir()} == {
        "drift-report.json", "drift-report.md", "drift-report.html"}


def test_spec_run_drifts_exit_1_with_reports_metrics_and_retrain(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-C", str(project), "drift", "--window", "all"])
    out = capsys.readouterr()
    assert code == 1
    report = json.loads((project / "reports" / "drift" / "drift-report.json").read_text())
    assert sorted(report["dataset"]["drifted_features"]) == sorted(SHIFTED)
    assert report["dataset"]["share"] == pytest.approx(0.5)
    html = (project / "reports" / "drift" / "drift-report.html").read_text()
    assert html.count("<svg") == 3 and "<script" not in html
    assert "DRIFT ALERT [demo]" in out.err
    assert (project / "retrain.txt").read_text().startswith("run-42 drift in 3 of 6 features")
    # The command hook runs in the -C folder, not wherever mlgen was started.
    assert Path.cwd() != project
    assert Path((project / "retrain-cwd.txt").read_text().strip()).resolve() == project.resolve()
    assert {a["action"]: a["status"] for a in report["actions"]} == {"alert": "sent",
                                                                     "retrain": "triggered"}
    prom = (project / "metrics" / "mlgen_drift_demo.prom").read_text()
    assert 'mlgen_drift_detected{model="demo"} 1.0' in prom
    assert 'mlgen_drift_feature_drifted{model="demo",feature="num00"} 1.0' in prom
    assert "mlgen_drift_last_success_timestamp_seconds" in prom


def test_window_keeps_only_recent_rows(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(project), "drift", "--no-actions", "--json"]) == 1  # spec: 24h
    doc = json.loads(capsys.readouterr().out)
    assert doc["current"]["rows_read"] == 6_000 and doc["current"]["rows"] == 3_000


def test_failed_run_keeps_last_success_in_textfile(project: Path) -> None:
    assert main(["-C", str(project), "drift", "--window", "all", "--no-actions"]) == 1
    prom = project / "metrics" / "mlgen_drift_demo.prom"
    before = [
        ln for ln in prom.read_text().splitlines() if ln.startswith("mlgen_drift_last_success")
    ]
    assert (
        main(["-C", str(project), "drift", "--current", str(project / "empty"), "--no-actions"])
        == 2
    )
    text = prom.read_text()
    assert [ln for ln in text.splitlines() if ln.startswith("mlgen_drift_last_success")] == before
    assert 'mlgen_drift_run_status{model="demo"} 2.0' in text


class _Gateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, str]]] = []

    def _store(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    do_PUT = do_POST = _store

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    _Gateway.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_metrics_go_to_a_pushgateway_when_configured(project: Path, gateway: str) -> None:
    assert main(["-C", str(project), "drift", "--window", "all", "--no-actions",
                 "--pushgateway", gateway]) == 1
    (method, path, body) = _Gateway.received[-1]
    assert (method, path) == ("PUT", "/metrics/job/mlgen_drift/model/demo")
    assert (
        "# TYPE mlgen_drift_share gauge" in body and 'mlgen_drift_share{model="demo"} 0.5' in body
    )
    assert not (project / "metrics").exists()  # Pushgateway wins over the textfile


def test_usage_errors_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(project), "drift", "--window", "all", "--numeric-method", "magic"]) == 2
    assert "unknown numeric drift method 'magic'" in capsys.readouterr().err
    assert main(["-C", str(project), "drift", "--threshold", "nope=1"]) == 2
    assert main(["-C", str(project / "nowhere"), "drift"]) == 2


def test_retrain_registry_resolves_lazy_entries_and_the_command_hook() -> None:
    hooks = {**HOOKS, "lazy": "mlgen.publish.retrain:CommandHook"}

    class Spec:  # what a factory receives: anything with drift.retrain_command
        class drift:
            retrain_command = "echo built-1"

    assert isinstance(get_hook("command", Spec), CommandHook)
    assert get_hook("command", Spec).trigger("why", {"a": 1}) == "built-1"
    assert isinstance(get_hook("lazy", "echo x", hooks), CommandHook)
    with pytest.raises(Exception, match="no retrain hook named 'jenkinz'"):
        get_hook("jenkinz", Spec)


def test_spec_min_rows_and_missing_rate_threshold_are_used(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cur = frame(np.random.default_rng(21), 400, numeric=4, categorical=2)
    cur.loc[:59, "num02"] = np.nan  # 15% missing against ~0% in the reference
    cur.to_parquet(project / "missing.parquet")
    args = ["-C", str(project), "drift", "--no-actions", "--json", "--current",
            str(project / "missing.parquet"), "--window", "all"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (
        doc["settings"]["thresholds"]["missing_rate"] == 0.2 and doc["settings"]["min_rows"] == 50
    )
    num02 = next(f for f in doc["features"] if f["name"] == "num02")
    assert num02["missing"]["change"] == pytest.approx(0.15) and not num02["drifted"]
    assert main([*args, "--threshold", "missing_rate=0.1"]) == 0
    num02 = next(f for f in json.loads(capsys.readouterr().out)["features"] if f["name"] == "num02")
    assert num02["drifted"] and "missing rate moved from 0.0% to 15.0%" in " ".join(num02["notes"])

    shifted = frame(np.random.default_rng(22), 40, numeric=4, categorical=2, shifted=SHIFTED,
                    shift=3.0)
    shifted.to_parquet(project / "short.parquet")
    short = ["-C", str(project), "drift", "--no-actions", "--json", "--current",
             str(project / "short.parquet"), "--window", "all"]
    assert main(short) == 0  # 40 rows < drift.min_rows 50: too few to judge, not drift
    doc = json.loads(capsys.readouterr().out)
    assert doc["dataset"]["too_few_rows"] is True and doc["dataset"]["drift"] is False
    assert main([*short, "--min-rows", "30"]) == 1  # the flag wins over the spec


def _shared_log_project(root: Path) -> Path:
    """A spec without drift.current: the window is serve.request_log.path, which another model's
    server writes to as well (the default /var/log/mlgen on one machine, or a shared volume)."""
    ref = frame(np.random.default_rng(31), 4_000, numeric=4, categorical=2)
    numeric, categorical = names(ref)
    write_profile(ref, root / "artifacts" / "reference_profile.json", numeric=numeric,
                  categorical=categorical, model="demo")
    logs = root / "shared-logs"
    write_request_log(frame(np.random.default_rng(32), 2_000, numeric=4, categorical=2), logs)
    other = frame(np.random.default_rng(33), 3_000, numeric=4, categorical=2, shifted=SHIFTED,
                  shift=2.0)
    write_request_log(other, logs, model="fraud")
    write_request_log(other.head(500), logs, model="churn")
    (root / "mlgen.yaml").write_text(
        "apiVersion: mlgen/v1\nname: demo\nmodel:\n  task: classification\n  features:\n"
        f"    numeric: {numeric}\n    categorical: {categorical}\n".replace("'", '"')
        + f"serve:\n  request_log: {{path: {logs}}}\n"
        "drift:\n  window: 24h\n  min_rows: 50\n  on_drift: []\n")
    return root


def test_no_flags_reads_the_spec_request_log_and_drops_other_models_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _shared_log_project(tmp_path / "p")
    assert main(["-C", str(root), "drift", "--json"]) == 0  # the other models' shift is not ours
    doc = json.loads(capsys.readouterr().out)
    assert doc["current"]["path"] == str(root / "shared-logs")
    assert doc["current"]["rows_read"] == 5_500 and doc["current"]["rows"] == 2_000
    assert doc["current"]["rows_other_models"] == 3_500
    assert doc["current"]["other_models"] == {"churn": 500, "fraud": 3_000}
    (problem,) = [p for p in doc["problems"] if p["kind"] == "other_models"]
    assert problem["count"] == 3_500 and "'fraud' (3000)" in problem["message"]
    assert main(["-C", str(root), "drift"]) == 0
    text = capsys.readouterr().out
    assert "3500 rows of other models dropped" in text
    assert "other_models: 3500 rows of other models dropped (model field not 'demo')" in text


def test_only_other_models_rows_is_an_error_that_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _shared_log_project(tmp_path / "p")
    assert main(["-C", str(root), "drift", "--json", "--model", "nobody"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"].endswith("no rows of model 'nobody'; nothing to compare")
    assert doc["current"]["rows_other_models"] == 5_500


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet", "jsonl"])
def test_a_model_column_filters_every_reader(tmp_path: Path, fmt: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = _shared_log_project(tmp_path / "p")
    mine = frame(np.random.default_rng(41), 1_000, numeric=4, categorical=2).assign(model="demo")
    theirs = frame(np.random.default_rng(42), 1_000, numeric=4, categorical=2, shifted=SHIFTED,
                   shift=2.0).assign(model="fraud")
    both = pd.concat([mine, theirs], ignore_index=True)
    path = root / f"window.{fmt}"
    if fmt == "parquet":
        both.to_parquet(path)
    elif fmt == "jsonl":  # flat rows and one malformed line: the tolerant Python reader
        path.write_text(both.to_json(orient="records", lines=True) + "{not json\n")
    else:
        both.to_csv(path, index=False)
    assert (
        main(["-C", str(root), "drift", "--json", "--current", str(path), "--window", "all"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["current"]["rows"] == 1_000 and doc["current"]["other_models"] == {"fraud": 1_000}


def test_a_failing_retrain_hook_is_reported_and_the_verdict_stands(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = project / "mlgen.yaml"
    text = spec.read_text()
    start = text.index("  retrain_command:")
    end = text.index("\n", start)
    spec.write_text(text[:start] + "  retrain_command: echo 'queue full' >&2; exit 3"
                    + text[end:])
    code = main(["-C", str(project), "drift", "--window", "all"])
    err = capsys.readouterr().err
    assert code == 1
    assert "retrain hook 'command' failed: drift.retrain_command exited 3: queue full" in err
    report = json.loads((project / "reports" / "drift" / "drift-report.json").read_text())
    assert {a["action"]: a["status"] for a in report["actions"]} == {"alert": "sent",
                                                                     "retrain": "failed"}
