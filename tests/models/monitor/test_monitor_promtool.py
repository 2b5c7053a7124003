"""The rendered PrometheusRule through Prometheus' own promtool: every example's rules parse
(`promtool check rules`), and the monitor's alerts fire on the series the real export writes
(`promtool test rules`): ModelPerformanceDrop for each dropped metric of a planted
degradation and never for the unchanged window, ModelLabelsStopped when the newest label is
older than labels_stale_after or no label came while predictions are due, ModelMonitorJobStale
after two missed runs. promtool comes with Debian's `prometheus` package (.ci/run)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import EXAMPLES, call_mlgen
from tests.models.monitor.test_monitor_cli import NOW_ARG, make_project

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus; .ci/run)")
RULES = sorted(EXAMPLES.glob("**/k8s/monitoring/prometheusrule.yaml"))
CREDIT = EXAMPLES / "credit-risk" / "k8s" / "monitoring" / "prometheusrule.yaml"
SAMPLE = re.compile(r"^(mlgen_monitor_[a-z_]+\{[^}]*\}) (\S+)$")


def _rules_file(rule: Path, folder: Path) -> Path:
    """The PrometheusRule's spec is a Prometheus rules file: `groups:`."""
    spec = yaml.safe_load(rule.read_text())["spec"]
    out = folder / f"{rule.parent.parent.parent.name}-rules.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def _alert(name: str) -> dict[str, Any]:
    doc = yaml.safe_load(CREDIT.read_text())
    return next(r for g in doc["spec"]["groups"] for r in g["rules"] if r.get("alert") == name)


def _exported(tmp_path: Path, capsys: pytest.CaptureFixture[str], flip: float) -> list[str]:
    """The monitor's real textfile, its model renamed to the example's (credit-risk)."""
    root, _ = make_project(tmp_path, flip=flip)
    call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG)
    text = (root / "metrics" / "mlgen_monitor.prom").read_text()
    return [line.replace('model="credit"', 'model="credit-risk"') for line in text.splitlines()
            if SAMPLE.match(line)]


def _test_file(folder: Path, rules: Path, series: dict[str, str],
               checks: list[dict[str, Any]]) -> Path:
    doc = {"rule_files": [str(rules)], "evaluation_interval": "1m",
           "tests": [{"interval": "1m",
                      "input_series": [{"series": s, "values": v} for s, v in series.items()],
                      "alert_rule_test": checks}]}
    path = folder / "test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _fired(name: str, labels: dict[str, str]) -> dict[str, Any]:
    rule = _alert(name)
    annotations = {k: v.replace("{{ $labels.metric }}", labels.get("metric", ""))
                   for k, v in rule.get("annotations", {}).items()}
    return {"exp_labels": {**rule["labels"], **labels}, "exp_annotations": annotations}


@needs_promtool
@pytest.mark.parametrize("rule", RULES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_rule_file_passes_promtool_check(rule: Path, tmp_path: Path) -> None:
    done = _promtool("check", "rules", str(_rules_file(rule, tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
def test_check_rules_catches_a_broken_expression(tmp_path: Path) -> None:
    """promtool really parses PromQL here: a broken expression fails the check."""
    rules = _rules_file(CREDIT, tmp_path)
    rules.write_text(rules.read_text().replace("> 0", "> > 0", 1))
    done = _promtool("check", "rules", str(rules))
    assert done.returncode != 0
    assert "parse error" in done.stdout + done.stderr


@needs_promtool
@pytest.mark.parametrize("flip", [0.3, 0.0], ids=["degraded", "unchanged"])
def test_performance_drop_fires_per_dropped_metric_on_the_real_export(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flip: float) -> None:
    lines = _exported(tmp_path / "project", capsys, flip)
    samples = dict(SAMPLE.match(line).groups() for line in lines)  # type: ignore[union-attr]
    dropped = sorted(re.search(r'metric="([^"]+)"', s).group(1)  # type: ignore[union-attr]
                     for s, v in samples.items()
                     if s.startswith("mlgen_monitor_drop{") and float(v) > 0)
    assert (len(dropped) >= 2) == (flip > 0), dropped  # roc_auc and accuracy when degraded
    series = {s: f"{float(v):g}x20" for s, v in samples.items()
              if not s.startswith(("mlgen_monitor_last_", "mlgen_monitor_labels"))}
    rules = _rules_file(CREDIT, tmp_path)
    checks = [{"eval_time": "10m", "alertname": "ModelPerformanceDrop",
               "exp_alerts": [_fired("ModelPerformanceDrop", {"metric": m}) for m in dropped]}]
    done = _promtool("test", "rules", str(_test_file(tmp_path, rules, series, checks)))
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_labels_stopped_and_job_stale_fire_when_they_should(tmp_path: Path) -> None:
    stale = 3 * 86400  # the example's monitor.labels_stale_after
    job_stale = int(re.search(r"> (\d+)$", _alert("ModelMonitorJobStale")["expr"]).group(1))  # type: ignore[union-attr]
    m = 'model="credit-risk"'
    series = {
        # the last label arrived at t=0, the job last ran at t=0
        f"mlgen_monitor_last_label_timestamp_seconds{{{m}}}": "0x300",
        f"mlgen_monitor_last_run_timestamp_seconds{{{m}}}": "0x300",
    }
    # Evaluated every hour: before and after the thresholds.
    checks = [
        {"eval_time": f"{stale // 3600 - 1}h", "alertname": "ModelLabelsStopped",
         "exp_alerts": []},
        {"eval_time": f"{stale // 3600 + 1}h", "alertname": "ModelLabelsStopped",
         "exp_alerts": [_fired("ModelLabelsStopped", {})]},
        {"eval_time": f"{job_stale // 3600}h", "alertname": "ModelMonitorJobStale",
         "exp_alerts": []},
        {"eval_time": f"{job_stale // 3600 + 1}h", "alertname": "ModelMonitorJobStale",
         "exp_alerts": [_fired("ModelMonitorJobStale", {})]},
    ]
    rules = _rules_file(CREDIT, tmp_path)
    doc = {"rule_files": [str(rules)], "evaluation_interval": "1m",
           "tests": [{"interval": "1h", "input_series": [{"series": s, "values": v}
                                                         for s, v in series.items()],
                      "alert_rule_test": checks}]}
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    done = _promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr

    # No label at all while predictions are due: fires at once; none due: silent.
    for expected, fires in (("5", True), ("0", False)):
        series = {f'mlgen_monitor_labels{{{m},kind="labels_read"}}': "0x20",
                  f'mlgen_monitor_labels{{{m},kind="expected"}}': f"{expected}x20"}
        checks = [{"eval_time": "5m", "alertname": "ModelLabelsStopped",
                   "exp_alerts": [_fired("ModelLabelsStopped", {})] if fires else []}]
        done = _promtool("test", "rules", str(_test_file(tmp_path, rules, series, checks)))
        assert done.returncode == 0, done.stdout + done.stderr
