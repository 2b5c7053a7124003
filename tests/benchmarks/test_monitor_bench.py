"""benchmarks/monitor_bench.py runs end to end at a tiny size (mlgen monitor and pandas +
scikit-learn on the same files, their point values agreeing), its data is byte for byte what the
real writers produce, and its cross-check fails loudly when the contenders disagree. No timings
are asserted: the numbers are the benchmark's to report (docs/benchmarks.md)."""
from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import REPO

BENCH = REPO / "benchmarks" / "monitor_bench.py"


def _bench() -> ModuleType:
    if str(BENCH.parent) not in sys.path:  # its sibling monitor_data, as when run as a script
        sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("monitor_bench", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["monitor_bench"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    work = tmp_path_factory.mktemp("monitor-bench")
    out = work / "result.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--predictions", "3000", "--labels", "2500", "--repeats",
         "1", "--skip-nannyml", "--work", str(work), "--json-out", str(out)],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout, work


def test_runs_end_to_end_and_the_contenders_agree(
        tiny_run: tuple[dict[str, Any], str, Path]) -> None:
    doc, stdout, _ = tiny_run
    mlgen, pandas = doc["results"]["mlgen"], doc["results"]["pandas + scikit-learn"]
    assert doc["agree"] is True and doc["compared"] == 13  # 6 metrics + 7 counts
    assert mlgen["counts"] == pandas["counts"]
    counts = mlgen["counts"]
    # The planted cases are there: retries, corrected labels, unknown ids, late labels.
    assert counts["labels_read"] == 2500 and counts["unknown_ids"] == 25
    assert counts["duplicate_labels"] >= 50 and counts["late_labels"] > 0
    assert counts["duplicate_prediction_ids"] > 0
    assert 0.5 < mlgen["metrics"]["roc_auc"] < 1.0
    assert doc["results"]["NannyML PerformanceCalculator"] == {"skipped": "--skip-nannyml"}
    assert "| mlgen |" in stdout and "| pandas + scikit-learn |" in stdout
    assert "not run: --skip-nannyml" in stdout


def test_data_is_what_the_real_writers_write(tiny_run: tuple[dict[str, Any], str, Path]) -> None:
    """Every line equals json.dumps of itself with the writers' separators, the keys in the
    writers' order (reqlog.RequestLogger.sample, monitor.store._append)."""
    _, _, work = tiny_run
    base = work / "p3000-l2500"
    logs = sorted((base / "logs").glob("requests.jsonl*"))
    assert [p.name for p in logs] == ["requests.jsonl", "requests.jsonl.1", "requests.jsonl.2",
                                      "requests.jsonl.3"]
    for path, keys in [(p, ["ts", "model", "id", "features", "prediction", "score"])
                       for p in logs] + [(base / "labels.jsonl", ["id", "label", "labelled_at"])]:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            assert list(row) == keys
            assert json.dumps(row, separators=(",", ":"), ensure_ascii=False) == line


def test_cross_check_fails_loudly_on_a_disagreement(
        tiny_run: tuple[dict[str, Any], str, Path]) -> None:
    bench = _bench()
    doc, _, _ = tiny_run
    results = {k: v for k, v in doc["results"].items() if "skipped" not in v}
    assert len(bench.cross_check(results)) == 13

    off_metric = copy.deepcopy(results)
    off_metric["pandas + scikit-learn"]["metrics"]["roc_auc"] += 1e-6
    with pytest.raises(bench.Disagreement, match=r"roc_auc: mlgen .*, pandas \+ scikit-learn"):
        bench.cross_check(off_metric)

    off_count = copy.deepcopy(results)
    off_count["pandas + scikit-learn"]["counts"]["late_labels"] += 1
    with pytest.raises(bench.Disagreement, match="late_labels"):
        bench.cross_check(off_count)

    # A peer that computes fewer metrics (NannyML has no brier) is compared on what it has.
    partial = copy.deepcopy(results)
    partial["peer"] = {"metrics": {"accuracy": results["mlgen"]["metrics"]["accuracy"]},
                       "counts": {"labelled": results["mlgen"]["counts"]["labelled"]}}
    assert len(bench.cross_check(partial)) == 15
