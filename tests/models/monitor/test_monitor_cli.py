"""`mlgen monitor` and `mlgen feedback` end to end: a planted degradation exits 1 naming the
metric, the drop and the window and fires the retrain hook (the command hook here; the Jenkins
and GitHub emulators in test_monitor_retrain_emulators.py); the unchanged case exits 0; the
metrics agree with scikit-learn; feedback counts what it must."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from tests.helpers import call_mlgen
from tests.models.monitor.helpers import NOW, write_log

NOW_ARG = NOW.isoformat().replace("+00:00", "Z")


def make_project(root: Path, *, flip: float, hook: str = "command", n: int = 4000,
                 extra: dict | None = None) -> tuple[Path, dict[str, np.ndarray]]:
    truth = write_log(root / "logs", n, seed=3, flip_share=flip, model="credit")
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    clean = write_log(root / "clean", n, seed=3)  # what training saw: the unflipped labels
    train = {"roc_auc": float(roc_auc_score(clean["truth"], clean["score"])),
             "accuracy": float(accuracy_score(clean["truth"], clean["prediction"]))}
    (root / "artifacts" / "metrics.json").write_text(json.dumps(train))
    doc = {"apiVersion": "mlgen/v1", "name": "credit",
           "model": {"features": {"numeric": ["x"]}},
           "serve": {"request_log": {"path": str(root / "logs")}},
           "drift": {"retrain_hook": hook,
                     "retrain_command": f"echo \"$MLGEN_DRIFT_REASON\" > {root}/retrain.txt; "
                                        "echo run-7"},
           "monitor": {"window": "7d", "min_labels": 100, "on_drop": ["alert", "retrain"],
                       "textfile_dir": "metrics", "metrics": ["roc_auc", "accuracy", "f1"]},
           **(extra or {})}
    (root / "mlgen.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root, truth


def test_planted_degradation_exits_1_naming_metric_drop_window(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = make_project(tmp_path, flip=0.3)
    code, _out, err = call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG)
    assert code == 1, err
    assert "PERFORMANCE DROP [credit]: roc_auc dropped" in err
    assert "window 2026-11-24T12:00:00Z..2026-12-01T12:00:00Z" in err
    report = json.loads((root / "reports" / "monitor" / "monitor-report.json").read_text())
    assert {d["metric"] for d in report["drops"]} >= {"roc_auc", "accuracy"}
    assert all(d["drop"] > d["allowed"] for d in report["drops"] if d["allowed"] is not None)
    assert (root / "retrain.txt").read_text().startswith("performance drop: roc_auc dropped")
    assert {a["action"]: a["status"] for a in report["actions"]} == {
        "alert": "sent", "retrain": "triggered"}
    html = (root / "reports" / "monitor" / "monitor-report.html").read_text()
    assert html.count("<svg") == 1 and "<script" not in html
    prom = (root / "metrics" / "mlgen_monitor.prom").read_text()
    assert 'mlgen_monitor_drop{model="credit",metric="roc_auc"} 1' in prom
    assert 'mlgen_monitor_labels{model="credit",kind="labelled"} 4000' in prom


def test_unchanged_case_exits_0_and_dry_run_triggers_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = make_project(tmp_path, flip=0.0)
    code, out, err = call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["drops"] == [] and doc["labelled_share"] == 1.0
    assert not (root / "retrain.txt").exists()
    flipped = make_project(tmp_path / "b", flip=0.3)[0]
    code, _, err = call_mlgen(capsys, "-C", str(flipped), "monitor", "--now", NOW_ARG,
                              "--dry-run")
    assert code == 1 and "dry run: would start a retraining via command" in err
    assert not (flipped / "retrain.txt").exists()


def test_metrics_agree_with_scikit_learn(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root, truth = make_project(tmp_path, flip=0.2)
    _code, out, _ = call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG, "--json",
                              "--window", "all")
    doc = json.loads(out)["metrics"]
    y, p, s = truth["truth"], truth["prediction"], truth["score"]
    assert doc["roc_auc"]["value"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert doc["accuracy"]["value"] == pytest.approx(accuracy_score(y, p), abs=1e-12)
    assert doc["f1"]["value"] == pytest.approx(f1_score(y, p), abs=1e-12)
    for name in ("roc_auc", "accuracy", "f1"):
        assert doc[name]["ci_low"] < doc[name]["value"] < doc[name]["ci_high"]
    from mlgen.models.monitor.metrics import compute

    est = compute(("precision", "recall"), y=y, prediction=p, score=s)
    assert est["precision"].value == pytest.approx(precision_score(y, p))
    assert est["recall"].value == pytest.approx(recall_score(y, p))
    rng = np.random.default_rng(0)
    yr, pr = rng.normal(size=500), rng.normal(size=500)
    reg = compute(("rmse", "mae", "r2"), y=yr, prediction=pr, score=None)
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    assert reg["rmse"].value == pytest.approx(mean_squared_error(yr, pr) ** 0.5)
    assert reg["mae"].value == pytest.approx(mean_absolute_error(yr, pr))
    assert reg["r2"].value == pytest.approx(r2_score(yr, pr))


def test_feedback_counts_unknown_duplicate_late_and_names_bad_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = make_project(tmp_path, flip=0.0, n=300)
    (root / "logs" / "labels.jsonl").unlink()
    # r00000000 is the oldest row, logged almost 7 days before NOW: outside a 1d window.
    doc = yaml.safe_load((root / "mlgen.yaml").read_text())
    doc["monitor"]["window"] = "1d"
    (root / "mlgen.yaml").write_text(yaml.safe_dump(doc))
    labels = root / "new.csv"
    labels.write_text("id,label\nr00000299,1\nr00000299,0\nnope-1,1\nr00000000,0\n")
    code, out, err = call_mlgen(capsys, "-C", str(root), "feedback", "--labels", str(labels),
                                "--json", "--now", NOW_ARG)
    assert code == 0, err
    counts = json.loads(out)
    assert (counts["rows"], counts["duplicates"], counts["unknown_ids"], counts["late"],
            counts["written"]) == (4, 1, 1, 1, 4)
    assert len((root / "logs" / "labels.jsonl").read_text().splitlines()) == 4
    # The same file again: every id is now a duplicate of the store.
    code, out, _ = call_mlgen(capsys, "-C", str(root), "feedback", "--labels", str(labels),
                              "--json", "--dry-run", "--now", NOW_ARG)
    assert json.loads(out)["duplicates"] == 4 and json.loads(out)["written"] == 0
    bad = root / "bad.csv"
    bad.write_text("id,label\nr00000001,1\n,0\n")
    code, _, err = call_mlgen(capsys, "-C", str(root), "feedback", "--labels", str(bad))
    assert code == 2 and "bad.csv: row 1: 'id' is empty" in err
    (root / "nolabel.csv").write_text("id,outcome\nr1,1\n")
    code, _, err = call_mlgen(capsys, "-C", str(root), "feedback", "--labels",
                              str(root / "nolabel.csv"))
    assert code == 2 and "no column 'label'" in err


def test_monitor_counts_unknown_duplicate_late_labels(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = make_project(tmp_path, flip=0.0, n=400)
    with open(root / "logs" / "labels.jsonl", "a") as f:
        f.write('{"id":"ghost","label":1}\n{"id":"r00000399","label":0}\n')
    code, out, _ = call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG, "--json",
                              "--window", "1d")
    c = json.loads(out)["counts"]
    assert c["unknown_ids"] == 1 and c["duplicate_labels"] == 1
    assert c["late_labels"] == 400 - c["labelled"] > 0
    code, _, err = call_mlgen(capsys, "-C", str(root), "monitor", "--window", "soon")
    assert code == 2 and "--window" in err


def test_a_failing_retrain_hook_is_reported_and_the_verdict_stands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = make_project(tmp_path, flip=0.3, extra={
        "drift": {"retrain_hook": "command",
                  "retrain_command": "echo 'queue full' >&2; exit 3"}})
    code, _out, err = call_mlgen(capsys, "-C", str(root), "monitor", "--now", NOW_ARG)
    assert code == 1, err
    assert "retrain hook 'command' failed: drift.retrain_command exited 3: queue full" in err
    report = json.loads((root / "reports" / "monitor" / "monitor-report.json").read_text())
    (retrain,) = [a for a in report["actions"] if a["action"] == "retrain"]
    assert retrain["status"] == "failed" and "exited 3" in retrain["detail"]
