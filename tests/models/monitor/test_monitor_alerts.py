"""The monitor's Prometheus side: the rendered alerts read series the real export writes, and
the server's /metrics passes the CronJob's textfile through, filtered and bounded."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from mlgen.models import contract as c
from mlgen.models.serving import metrics as prom

from tests.helpers import EXAMPLES, call_mlgen
from tests.models.monitor.test_monitor_cli import NOW_ARG, make_project

SERIES_RE = re.compile(r"(mlgen_monitor_[a-z_]+)\{([^}]*)\}")


def exported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    root, _ = make_project(tmp_path, flip=0.3)
    call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG)
    return (root / "metrics" / "mlgen_monitor.prom").read_text()


def test_alert_expressions_use_series_the_monitor_exports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = exported(tmp_path, capsys)
    samples = {(m.group(1), frozenset(p for p in m.group(2).split(",") if "model=" not in p))
               for m in SERIES_RE.finditer(text)}
    names = {name for name, _ in samples}
    rule = yaml.safe_load(
        (EXAMPLES / "credit-risk" / "k8s" / "monitoring" / "prometheusrule.yaml").read_text())
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]
             if "mlgen_monitor_" in r["expr"]]
    assert len(exprs) >= 3, exprs  # drop, labels stopped, job stale
    for expr in exprs:
        for name, labels in SERIES_RE.findall(expr):
            assert name in names, f"{name} in {expr!r} is not exported"
            wanted = {p for p in labels.split(",") if "model=" not in p}
            if wanted:
                assert any(n == name and wanted <= have for n, have in samples), (name, wanted)


def test_server_metrics_pass_the_monitor_textfile_through_filtered(tmp_path: Path) -> None:
    assert prom.monitor_text(None) == ""
    assert prom.monitor_text(tmp_path) == ""  # no textfile yet: nothing, no error
    folder = tmp_path / c.MONITOR_METRICS_DIR
    folder.mkdir()
    (folder / c.MONITOR_TEXTFILE).write_text(
        "# HELP mlgen_monitor_drop 1 when the metric dropped\n"
        'mlgen_monitor_drop{model="m",metric="roc_auc"} 1\n'
        'mlgen_http_requests_total{route="/predict"} 9999\n'  # someone else's series: dropped
        "garbage line\n")
    out = prom.monitor_text(tmp_path)
    assert out == ("# HELP mlgen_monitor_drop 1 when the metric dropped\n"
                   'mlgen_monitor_drop{model="m",metric="roc_auc"} 1\n')
    (folder / c.MONITOR_TEXTFILE).write_text('mlgen_monitor_x{a="b"} 1\n' * 20000)
    big = prom.monitor_text(tmp_path)
    assert 0 < len(big) <= prom.MONITOR_TEXT_MAX and big.endswith("1\n")
