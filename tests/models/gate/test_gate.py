"""`mlgen gate`: thresholds, the champion (file and real HTTP), reports, and unusable input."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mlgen.cli import main
from mlgen.models import gate

SPEC = """\
apiVersion: mlgen/v1
name: credit-risk
model:
  task: classification
  data: {{train: data/train.csv, target: default}}
  features: {{numeric: [income], categorical: [region]}}
  gate:
    metrics:
      roc_auc: {{min: 0.70}}
      brier: {{max: 0.25}}
{champion}
"""
CHAMPION = "    champion: {metric: roc_auc, min_delta: 0.01}\n"
GOOD = {"roc_auc": 0.80, "brier": 0.12, "accuracy": 0.81, "log_loss": 0.40}


def make_project(root: Path, metrics: dict | None = GOOD, champion: str = CHAMPION) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mlgen.yaml").write_text(SPEC.format(champion=champion))
    if metrics is not None:
        (root / "artifacts").mkdir(exist_ok=True)
        (root / "artifacts/metrics.json").write_text(json.dumps(metrics))
    return root


def run(root: Path, *args: str) -> tuple[int, dict]:
    code = main(["-C", str(root), "gate", *args])
    report = root / "reports/gate/gate.json"
    return code, json.loads(report.read_text()) if report.exists() else {}


# --- the core ----------------------------------------------------------------------------------

NO_CHAMPION = gate.ChampionInfo(None, None, "none given")


def test_thresholds_min_and_max_pass_and_fail() -> None:
    bounds = {"roc_auc": gate.Bound(min=0.7), "brier": gate.Bound(max=0.25),
              "accuracy": gate.Bound(min=0.5, max=0.9)}
    ok = gate.evaluate_gate("m", "metrics.json", GOOD, bounds, None, NO_CHAMPION)
    assert ok.passed and [c.passed for c in ok.checks] == [True, True, True]
    bad = gate.evaluate_gate("m", "metrics.json", {**GOOD, "brier": 0.3, "accuracy": 0.95},
                             bounds, None, NO_CHAMPION)
    assert not bad.passed
    assert [c.metric for c in bad.checks if not c.passed] == ["brier", "accuracy"]
    assert bad.checks[2].rule == ">= 0.5 and <= 0.9"


def test_a_value_on_the_bound_passes() -> None:
    result = gate.evaluate_gate("m", "f", {"r2": 0.1 + 0.2}, {"r2": gate.Bound(min=0.3)}, None,
                                NO_CHAMPION)
    assert result.passed  # 0.30000000000000004 vs 0.3: float noise is not a failure


@pytest.mark.parametrize(("value", "champion", "delta", "higher", "passed"), [
    (0.80, 0.78, 0.01, True, True),
    (0.80, 0.795, 0.01, True, False),    # better, but not by min_delta
    (0.77, 0.78, -0.02, True, True),     # a negative delta tolerates a small loss
    (30_000, 32_000, 1_000, False, True),  # rmse: lower is better
    (31_500, 32_000, 1_000, False, False),
])
def test_champion_comparison(value: float, champion: float, delta: float, higher: bool,
                             passed: bool) -> None:
    rule = gate.ChampionRule("m", delta, higher)
    info = gate.ChampionInfo("champ.json", {"m": champion})
    result = gate.evaluate_gate("x", "f", {"m": value}, {}, rule, info)
    (check,) = result.checks
    assert check.kind == "champion" and check.passed is passed and result.passed is passed
    assert check.champion == champion


def test_missing_metrics_are_all_named_with_the_file() -> None:
    bounds = {"roc_auc": gate.Bound(min=0.7), "f1": gate.Bound(min=0.5)}
    with pytest.raises(gate.GateInputError) as info:
        gate.evaluate_gate("m", "artifacts/metrics.json", {"brier": 0.1}, bounds,
                           gate.ChampionRule("pr_auc"), NO_CHAMPION)
    message = str(info.value)
    assert message.startswith("artifacts/metrics.json: no metric(s) roc_auc, f1, pr_auc")
    assert "the file has: brier" in message and info.value.exit_code == 2


@pytest.mark.parametrize("value", [None, "0.8", True, float("nan")])
def test_a_metric_that_is_not_a_number_is_bad_input(value: object) -> None:
    with pytest.raises(gate.GateInputError, match="metric 'roc_auc' is .* not a finite number"):
        gate.evaluate_gate("m", "f", {"roc_auc": value}, {"roc_auc": gate.Bound(min=0.7)}, None,
                           NO_CHAMPION)


def test_champion_without_the_metric_is_bad_input() -> None:
    with pytest.raises(
        gate.GateInputError, match="champion.json: the champion's metrics have no 'm'"
    ):
        gate.evaluate_gate("x", "f", {"m": 1.0}, {}, gate.ChampionRule("m"),
                           gate.ChampionInfo("champion.json", {"other": 1.0}))


def test_metrics_documents_in_three_shapes() -> None:
    assert gate.parse_metrics({"a": 1}, "f") == {"a": 1}
    assert gate.parse_metrics({"model": "x", "metrics": {"a": 1}}, "f") == {"a": 1}
    assert gate.parse_metrics({"metrics": [{"name": "a", "value": 1}]}, "f") == {"a": 1}
    with pytest.raises(gate.GateInputError, match="expected a JSON object"):
        gate.parse_metrics([1, 2], "f")


def test_urls_are_shown_without_credentials() -> None:
    shown = gate.redact_url("https://user:s3cret@models.example.com:8443/m/champion.json?token=abc")
    assert shown == "https://models.example.com:8443/m/champion.json?…"
    assert "s3cret" not in shown and "abc" not in shown


def test_markdown_cannot_be_broken_by_metric_names() -> None:
    result = gate.evaluate_gate("m", "f", {"a|b`": 1.0}, {"a|b`": gate.Bound(min=0.5)}, None,
                                NO_CHAMPION)
    row = next(line for line in gate.render_markdown(result).splitlines() if "threshold" in line)
    assert row.count(" | ") == 4, row  # five cells: the name's pipe is escaped
    assert not gate.render_markdown(result).startswith("#"), "the PR bot adds the heading"


# --- the command ---------------------------------------------------------------------------------


def test_first_model_passes_with_a_note_and_writes_both_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "p")
    code, report = run(root, "--champion", "champion/metrics.json", "--first-model")
    out = capsys.readouterr().out
    assert code == 0 and report["passed"] is True
    assert "first model" in report["champion"]["note"]
    assert [m["name"] for m in report["metrics"]] == ["roc_auc", "brier"]
    assert "threshold  roc_auc" in out and "gate PASSED" in out
    md = (root / "reports/gate/gate.md").read_text()
    assert md.startswith("✅ **Passed**") and "first model" in md


def test_a_missing_champion_file_is_an_error_without_first_model(tmp_path: Path) -> None:
    """A typo in --champion used to read as "first model" and pass: now it stops the gate."""
    import subprocess
    import sys

    root = make_project(tmp_path / "p")
    proc = subprocess.run([sys.executable, "-m", "mlgen", "-C", str(root), "gate",
                           "--champion", "champoin.json"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --champion champoin.json: "), lines
    assert "not found" in lines[0] and "--first-model" in lines[0]
    assert "gate PASSED" not in proc.stdout
    report = json.loads((root / "reports/gate/gate.json").read_text())
    assert report["passed"] is False and "champoin.json" in report["error"]


def test_first_model_from_the_environment_and_a_present_champion_is_still_compared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path / "p")
    monkeypatch.setenv("MLGEN_GATE_FIRST_MODEL", "1")
    assert run(root, "--champion", "champion.json")[0] == 0  # absent: the first model
    (root / "champion.json").write_text(json.dumps({"roc_auc": 0.9}))
    code, report = run(root, "--champion", "champion.json")  # present: beaten, so it fails
    assert code == 1 and report["champion"]["passed"] is False


def test_threshold_failure_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path / "p", {**GOOD, "roc_auc": 0.65})
    code, report = run(root)
    assert code == 1 and report["passed"] is False
    assert report["metrics"][0] == {"name": "roc_auc", "value": 0.65, "min": 0.7, "max": None,
                                    "passed": False, "rule": ">= 0.7"}
    assert "FAIL" in capsys.readouterr().out
    assert (root / "reports/gate/gate.md").read_text().startswith("❌ **Failed**")


def test_champion_file_beats_and_loses(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (root / "champion.json").write_text(json.dumps({"roc_auc": 0.75}))
    code, report = run(root, "--champion", "champion.json")
    assert code == 0 and report["champion"]["passed"] is True
    assert report["champion"]["champion_value"] == 0.75
    (root / "champion.json").write_text(json.dumps({"roc_auc": 0.795}))  # needs 0.805
    code, report = run(root, "--champion", str(root / "champion.json"))
    assert code == 1 and report["champion"]["passed"] is False


def test_champion_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path / "p")
    (root / "champion.json").write_text(json.dumps({"roc_auc": 0.9}))
    monkeypatch.setenv("MLGEN_GATE_CHAMPION", "champion.json")
    assert run(root)[0] == 1


class _Champion(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes = {"/champion.json": (200, json.dumps({"roc_auc": 0.79})),
                  "/better.json": (200, json.dumps({"metrics": {"roc_auc": 0.95}})),
                  "/broken.json": (200, "<html>")}
        status, body = routes.get(self.path.split("?")[0], (404, "not found"))
        if self.path.startswith("/error"):
            status, body = 500, "boom"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def champion_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Champion)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_champion_over_http(tmp_path: Path, champion_url: str) -> None:
    root = make_project(tmp_path / "p")
    code, report = run(root, "--champion", f"{champion_url}/champion.json?token=secret")
    assert code == 0 and report["champion"]["champion_value"] == 0.79
    assert "secret" not in json.dumps(report)
    assert run(root, "--champion", f"{champion_url}/better.json")[0] == 1
    code, report = run(root, "--champion", f"{champion_url}/missing.json")
    assert code == 2 and "HTTP 404" in report["error"] and "--first-model" in report["error"]
    code, report = run(root, "--champion", f"{champion_url}/missing.json", "--first-model")
    assert code == 0 and "HTTP 404" in report["champion"]["note"]


@pytest.mark.parametrize(("path", "message"), [
    ("/error", "HTTP 500"), ("/broken.json", "not valid JSON")])
def test_champion_url_that_fails_is_bad_input(
    tmp_path: Path, champion_url: str, path: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "p")
    code, report = run(root, "--champion", champion_url + path)
    assert code == 2 and message in capsys.readouterr().err
    assert report["passed"] is False and message in report["error"]
    assert "could not run" in (root / "reports/gate/gate.md").read_text()


def test_unreachable_champion_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = make_project(tmp_path / "p")
    assert run(root, "--champion", f"http://127.0.0.1:{port}/c.json", "--timeout", "2")[0] == 2
    assert "cannot fetch" in capsys.readouterr().err


def test_missing_metrics_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "p", metrics=None)
    code, report = run(root)
    err = capsys.readouterr().err
    assert code == 2 and "artifacts/metrics.json: metrics file not found" in err
    assert "mlgen run train" in err and report["passed"] is False


def test_gated_metric_absent_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path / "p", {"roc_auc": 0.8})
    assert run(root)[0] == 2
    assert "no metric(s) brier" in capsys.readouterr().err


def test_metrics_file_that_is_not_json_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "p")
    (root / "other.json").write_text("{roc_auc: 0.8")
    assert run(root, "--metrics", "other.json")[0] == 2
    assert "other.json: not valid JSON" in capsys.readouterr().err


def test_unsupported_champion_scheme_is_a_usage_error(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path / "p")
    assert run(root, "--champion", "s3://bucket/champion.json")[0] == 2
    assert "only http(s) URLs and file paths" in capsys.readouterr().err


def test_custom_report_dir(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", champion="")
    assert main(["-C", str(root), "gate", "--report-dir", "out/g"]) == 0
    doc = json.loads((root / "out/g/gate.json").read_text())
    assert doc["schema"] == "mlgen.gate/v1" and doc["champion"]["source"] is None
