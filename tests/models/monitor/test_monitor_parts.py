"""The monitor's join in parts (models/monitor/parts.py, join.py): splitting by request id
gives exactly the report of joining everything at once, whatever the number of parts, with
retries and corrections spread over several files, unknown and late ids, the slow time path
and a type change mid-file; no part holds more than its share of the rows; the scratch files
go when the run ends, also on bad input; a scratch folder that cannot be written is a clear
exit 2. Memory and time are the benchmark's to report (benchmarks/monitor_bench.py)."""
from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from mlgen.models.monitor import join as join_module
from mlgen.models.monitor.metrics import roc_auc
from mlgen.models.monitor.parts import Parts, part_of
from mlgen.models.monitor.run import Settings, run_monitor
from sklearn.metrics import roc_auc_score

from tests.helpers import REPO, call_mlgen
from tests.models.monitor.helpers import NOW

sys.path.insert(0, str(REPO / "benchmarks"))
import monitor_data

NOW_ARG = NOW.isoformat().replace("+00:00", "Z")


def _settings(**extra: Any) -> Settings:
    return Settings(window=timedelta(days=7), label_delay=timedelta(days=1), now=NOW,
                    model=monitor_data.MODEL, min_labels=50,
                    training={"roc_auc": 0.9, "accuracy": 0.9}, **extra)


def _report(logs: Path, labels: Path, **extra: Any) -> dict[str, Any]:
    doc = run_monitor(logs, labels, _settings(**extra)).as_dict()
    for key in ("generated_at", "elapsed_seconds", "parts"):
        doc.pop(key)
    return doc


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The bench's data at 20k x 18k: retried ids logged again 7 rows on (often in the next
    rotated file), corrected labels, unknown ids, labels for predictions before the window;
    the labels split over a JSONL, a CSV and a Parquet file."""
    base = tmp_path_factory.mktemp("planted")
    data = monitor_data.make_data(20_000, 18_000, seed=4)
    monitor_data.write_log(data, base / "logs", chunk=5000)
    monitor_data.write_labels(data, base / "all.jsonl")
    lines = (base / "all.jsonl").read_text().splitlines()
    folder = base / "labels"
    folder.mkdir()
    third = len(lines) // 3
    (folder / "a.jsonl").write_text("\n".join(lines[:third]) + "\n")
    rows = [json.loads(x) for x in lines[third:]]
    csv_rows = rows[:third]
    (folder / "b.csv").write_text("id,label,labelled_at\n" + "".join(
        f"{r['id']},{r['label']},{r['labelled_at']}\n" for r in csv_rows))
    rest = rows[third:]
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"id": [r["id"] for r in rest], "label": [r["label"] for r in rest],
                             "labelled_at": [r["labelled_at"] for r in rest]}),
                   folder / "c.parquet")
    return base / "logs", folder


@pytest.mark.parametrize("parts", [2, 3, 7, 64])
def test_parts_give_the_report_of_one_join(planted: tuple[Path, Path], parts: int,
                                           tmp_path: Path) -> None:
    logs, labels = planted
    whole = _report(logs, labels, parts=1)
    assert whole["counts"]["duplicate_prediction_ids"] > 0
    assert whole["counts"]["duplicate_labels"] > 0
    assert whole["counts"]["unknown_ids"] > 0 and whole["counts"]["late_labels"] > 0
    assert whole["metrics"]["roc_auc"]["value"] > 0.5
    split = _report(logs, labels, parts=parts, spill_dir=tmp_path / "scratch")
    assert split == whole  # every count, metric, interval, series point and note
    assert list((tmp_path / "scratch").iterdir()) == []  # the run's folder is gone


def test_slow_times_and_a_type_change_mid_file_in_parts(tmp_path: Path) -> None:
    """A naive time in the newest file sends every block through parse_utc's slow path, and a
    prediction that turns from 0/1 into 0.0/1.0 past the sampled head makes that file read
    whole with inferred types; split or not, the report is the same."""
    data = monitor_data.make_data(3000, 2600, seed=9)  # 750 rows, 190 KB a file
    logs = tmp_path / "logs"
    monitor_data.write_log(data, logs, chunk=2000)
    newest = logs / "requests.jsonl"
    lines = newest.read_text().splitlines()
    row = json.loads(lines[-3])
    row["ts"] = row["ts"].removesuffix("Z")  # no zone: UTC assumed, the strptime path
    lines[-3] = json.dumps(row, separators=(",", ":"))
    older = logs / "requests.jsonl.2"
    old_lines = older.read_text().splitlines()
    row = json.loads(old_lines[-1])
    row["prediction"] = float(row["prediction"])  # 1 -> 1.0 after 64 KiB of ints
    old_lines[-1] = json.dumps(row, separators=(",", ":"))
    newest.write_text("\n".join(lines) + "\n")
    older.write_text("\n".join(old_lines) + "\n")
    labels = tmp_path / "labels.jsonl"
    monitor_data.write_labels(data, labels)
    whole = _report(logs, labels, parts=1)
    assert whole["error"] is None and whole["counts"]["labelled"] > 1000, whole["error"]
    assert _report(logs, labels, parts=5, spill_dir=tmp_path / "s") == whole


def test_no_part_holds_more_than_its_share(planted: tuple[Path, Path],
                                           monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    seen: list[int] = []
    original = Parts.table

    def table(self: Parts, i: int) -> pa.Table:
        t = original(self, i)
        seen.append(t.num_rows)
        return t

    monkeypatch.setattr(Parts, "table", table)
    logs, labels = planted
    run_monitor(logs, labels, _settings(parts=8, spill_dir=tmp_path))
    assert len(seen) == 16  # 8 parts of predictions, 8 of labels
    preds, labs = seen[0::2], seen[1::2]
    assert sum(preds) == 20_000 and sum(labs) == 18_000
    assert max(preds) < 20_000 / 8 * 1.25 and max(labs) < 18_000 / 8 * 1.25


def test_part_of_is_the_same_whatever_the_batch() -> None:
    ids = [f"{i:08x}-{'abc' * (i % 5)}" for i in range(5000)] + ["", "x" * 300]
    whole = part_of(pa.array(ids), 16)
    assert whole.min() >= 0 and whole.max() < 16
    assert np.bincount(whole, minlength=16).min() > 5000 / 16 * 0.8  # spread, not clumped
    sliced = np.concatenate([part_of(pa.array(ids).slice(a, 1000), 16)
                             for a in range(0, len(ids), 1000)])
    assert (sliced == whole).all()  # a slice's offset into its buffers changes nothing
    large = part_of(pa.array(ids, pa.large_string()), 16)
    assert (large == whole).all()
    assert (part_of(pa.array(ids), 1) == 0).all()


def test_scratch_removed_on_bad_input(planted: tuple[Path, Path], tmp_path: Path) -> None:
    logs, _ = planted
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.jsonl").write_text('{"id":"r000000001","label":1}\n' * 10)
    (labels / "b.csv").write_text("id,label\nr000000002,1\nbad id!,0\n")
    scratch = tmp_path / "scratch"
    report = run_monitor(logs, labels, _settings(parts=4, spill_dir=scratch))
    assert report.exit_code == 2
    assert report.error == f"{labels / 'b.csv'}: row 1: 'id' is empty or not a request id " \
                           "(A-Z a-z 0-9 . _ : -)"
    assert list(scratch.iterdir()) == []


def test_stale_scratch_of_a_killed_run_is_removed(planted: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    logs, labels = planted
    stale, fresh = tmp_path / "mlgen-monitor-dead", tmp_path / "mlgen-monitor-live"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "part-0.arrow").write_bytes(b"x")
    day_ago = time.time() - 2 * 86400
    os.utime(stale, (day_ago, day_ago))
    run_monitor(logs, labels, _settings(parts=2, spill_dir=tmp_path))
    assert not stale.exists()
    assert fresh.exists()  # maybe another run's, still going


def test_unwritable_scratch_is_a_clear_error(planted: tuple[Path, Path],
                                             tmp_path: Path) -> None:
    logs, labels = planted
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    report = run_monitor(logs, labels, _settings(parts=3, spill_dir=blocker))
    assert report.exit_code == 2
    assert report.error is not None
    assert report.error.startswith(f"{blocker}: cannot write the join's scratch files (")
    assert "--spill-dir" in report.error


def test_one_part_for_a_small_window(planted: tuple[Path, Path]) -> None:
    logs, labels = planted
    assert join_module.how_many_parts(logs, labels) == 1
    assert run_monitor(logs, labels, _settings()).parts == 1


def test_cli_parts_and_spill_dir(planted: tuple[Path, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    logs, labels = planted
    project = tmp_path / "project"
    project.mkdir()
    (project / "mlgen.yaml").write_text(
        f"apiVersion: mlgen/v1\nname: {monitor_data.MODEL}\n"
        "model:\n  features:\n    numeric: [x0]\n"
        f"serve:\n  request_log:\n    path: {json.dumps(str(logs))}\n"
        "monitor:\n  window: 7d\n  label_delay: 1d\n  min_labels: 50\n")
    args = ["-C", str(project), "monitor", "--labels", str(labels), "--now", NOW_ARG,
            "--json", "-o", str(tmp_path / "reports")]
    code_one, out_one, _ = call_mlgen(capsys, *args)
    code, out, err = call_mlgen(capsys, *args, "--parts", "6", "--spill-dir",
                                str(tmp_path / "scratch"))
    assert code_one == code == 0, err
    a, b = json.loads(out_one), json.loads(out)
    assert (a["parts"], b["parts"]) == (1, 6)
    for doc in (a, b):
        for key in ("generated_at", "elapsed_seconds", "parts"):
            doc.pop(key)
    assert a == b
    assert "joined in 6 parts by request id" in err
    assert list((tmp_path / "scratch").iterdir()) == []


def test_auc_with_ties_is_exact() -> None:
    """The binary-search U equals scikit-learn's and the rank-sum U bit for bit, with many ties
    (scores rounded to a tenth) and none."""
    rng = np.random.default_rng(2)
    for score in (np.round(rng.random(20_000), 1), rng.random(20_000)):
        y = rng.random(len(score)) < score
        got = roc_auc(y, score.copy()).value
        assert got == pytest.approx(float(roc_auc_score(y, score)), abs=1e-12)
        order = np.argsort(score)
        ranks = np.empty(len(score))
        sorted_s = score[order]
        starts = np.flatnonzero(np.r_[True, np.diff(sorted_s) != 0])
        ends = np.r_[starts[1:], len(score)]
        ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
        n1 = int(y.sum())
        n0 = len(y) - n1
        assert got == (ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0)


@pytest.mark.parametrize("task", ["regression", "multiclass", "no_scores"])
def test_parts_give_one_report_for_every_task(tmp_path: Path, task: str) -> None:
    """Regression numbers, three classes (accuracy only) and a log without scores go through
    the compact columns too: split or not, the same report."""
    rng = np.random.default_rng(5)
    n = 3000
    logs = tmp_path / "logs"
    logs.mkdir()
    rows, labels = [], []
    for i in range(n):
        ts = f"2026-11-{28 + i % 3:02d}T{i % 24:02d}:00:00Z"
        if task == "regression":
            truth = float(rng.normal(100, 20))
            pred: object = round(truth + float(rng.normal(0, 5)), 3)
            label: object = round(truth, 3)
        else:
            label = ["a", "b", "c"][i % 3] if task == "multiclass" else i % 2
            pred = label if rng.random() < 0.7 else (["a", "b", "c"][(i + 1) % 3]
                                                      if task == "multiclass" else 1 - i % 2)
        row = {"ts": ts, "model": "m", "id": f"q{i}", "prediction": pred}
        if task == "regression":
            row["score"] = None
        rows.append(json.dumps(row))
        labels.append(json.dumps({"id": f"q{i}", "label": label,
                                  "labelled_at": "2026-12-01T00:00:00Z"}))
    (logs / "requests.jsonl").write_text("\n".join(rows) + "\n")
    (tmp_path / "labels.jsonl").write_text("\n".join(labels) + "\n")
    settings = {"task": "regression" if task == "regression" else "classification",
                "window": timedelta(days=7), "now": NOW, "model": "m", "min_labels": 50}

    def report(parts: int) -> dict[str, Any]:
        doc = run_monitor(logs, tmp_path / "labels.jsonl",
                          Settings(**settings, parts=parts, spill_dir=tmp_path / "s")).as_dict()
        for key in ("generated_at", "elapsed_seconds", "parts"):
            doc.pop(key)
        return doc

    whole = report(1)
    assert whole["error"] is None and whole["counts"]["labelled"] == n
    want = {"regression": {"rmse", "mae", "r2"}, "multiclass": {"accuracy"},
            "no_scores": {"accuracy", "f1", "precision", "recall"}}[task]
    assert set(whole["metrics"]) == want
    if task == "regression":
        assert 4 < whole["metrics"]["rmse"]["value"] < 6
    else:
        assert 0.65 < whole["metrics"]["accuracy"]["value"] < 0.75
    assert report(4) == whole
