"""The data of benchmarks/monitor_bench.py, in the real formats, with known edge cases.

A request-log folder (requests.jsonl.3 .. .1, requests.jsonl; lines byte for byte as
models/serving/reqlog.py writes them) and a labels store (labels.jsonl as
models/monitor/store.py writes it), built per slice from numpy string arrays (one json.dumps
per row would take minutes at 1M rows). Predictions span 7.5 days before NOW, so with the 7-day
window about 1/15 of the labels are late; 0.2 % of the prediction ids are logged twice (a
retry), 2 % of the labels correct an earlier label (the last one wins) and 1 % name ids that
were never logged. Labels follow a calibrated score (P(y=1) = score).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NOW = "2026-12-01T12:00:00Z"
NOW_EPOCH = 1796126400  # NOW as seconds since 1970
WINDOW_DAYS = 7
SPAN_SECONDS = int(7.5 * 86400)
LOG_FILES = 4  # requests.jsonl.3, .2, .1, requests.jsonl (oldest first)
MODEL = "bench"
METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall", "brier")
CATS = ("retail", "salaried", "self", "public")


def log_files(logs: Path) -> list[Path]:
    """Oldest first, as mlgen reads a rotated folder."""
    return [logs / f"requests.jsonl.{i}" for i in range(LOG_FILES - 1, 0, -1)] + [
        logs / "requests.jsonl"]


def _stamps(seconds: Any, millis: bool) -> Any:  # numpy array of epoch seconds -> strings
    import numpy as np

    unit = "ms" if millis else "s"
    values = (seconds * 1000).astype("int64") if millis else seconds.astype("int64")
    return np.char.add(np.datetime_as_string(values.astype(f"datetime64[{unit}]"), unit=unit), "Z")


def make_data(n_preds: int, n_labels: int, seed: int = 15) -> dict[str, Any]:
    """The columns of the request log and the labels store, with the planted edge cases."""
    import numpy as np

    rng = np.random.default_rng(seed)
    score = rng.beta(2.0, 5.0, n_preds)
    truth = rng.random(n_preds) < score
    ts = np.sort(NOW_EPOCH - 60 - rng.uniform(0, SPAN_SECONDS, n_preds))
    ids = np.char.add("r", np.char.zfill(np.arange(n_preds).astype(str), 9))
    retry = rng.random(n_preds) < 0.002  # logged again under an earlier row's id
    ids = np.where(retry, ids[np.maximum(np.arange(n_preds) - 7, 0)], ids)
    n_unknown = n_labels // 100
    n_dup = n_labels // 50
    n_known = n_labels - n_unknown - n_dup
    if n_known > n_preds:
        raise SystemExit(f"--labels {n_labels}: at most {n_preds * 100 // 97} for "
                         f"{n_preds} predictions")
    pick = np.sort(rng.choice(n_preds, n_known, replace=False))
    lab_ids = ids[pick]
    lab = truth[pick].astype(np.int64)
    lab_ts = ts[pick]
    unk = np.char.add("u", np.char.zfill(np.arange(n_unknown).astype(str), 9))
    again = rng.choice(n_known, n_dup)
    lab_ids = np.concatenate([lab_ids, unk, lab_ids[again]])
    # A correction: a coin flip, so the last label differs from the first about half the time.
    lab = np.concatenate([lab, rng.integers(0, 2, n_unknown), rng.integers(0, 2, n_dup)])
    lab_ts = np.concatenate([lab_ts, np.full(n_unknown, NOW_EPOCH - 3600.0),
                             lab_ts[again] + 1800])
    order = np.argsort(lab_ts + 86400, kind="stable")  # labels arrive in time order
    feats = {f"x{i}": np.round(rng.normal(0, 1 + i, n_preds), 4) for i in range(6)}
    feats["segment"] = np.array(CATS)[rng.integers(0, len(CATS), n_preds)]
    feats["channel"] = np.array(("web", "branch"))[rng.integers(0, 2, n_preds)]
    return {"ts": ts, "id": ids, "score": score, "prediction": (score >= 0.5).astype(np.int64),
            "features": feats, "label_id": lab_ids[order], "label": lab[order],
            "labelled_at": lab_ts[order] + 86400}


def write_log(data: dict[str, Any], logs: Path, chunk: int = 100_000) -> None:
    """requests.jsonl lines byte for byte as RequestLogger.sample writes them (json.dumps with
    separators=(",", ":")), built per slice from numpy string arrays."""
    import numpy as np

    logs.mkdir(parents=True, exist_ok=True)
    n = len(data["ts"])
    bounds = np.linspace(0, n, LOG_FILES + 1).astype(int)
    names = list(data["features"])
    for file, lo, hi in zip(log_files(logs), bounds[:-1], bounds[1:], strict=True):
        with file.open("w", encoding="utf-8") as fh:
            for start in range(lo, hi, chunk):
                sl = slice(start, min(start + chunk, hi))
                ts = _stamps(data["ts"][sl], millis=True)
                cols = [data["features"][k][sl].tolist() for k in names]
                lines = []
                for i, (t, rid, pred, sc) in enumerate(zip(
                        ts.tolist(), data["id"][sl].tolist(), data["prediction"][sl].tolist(),
                        data["score"][sl].tolist(), strict=True)):
                    feats = ",".join(f'"{k}":{json.dumps(c[i])}' for k, c in zip(names, cols))
                    lines.append(f'{{"ts":"{t}","model":"{MODEL}","id":"{rid}",'
                                 f'"features":{{{feats}}},"prediction":{pred},"score":{sc!r}}}\n')
                fh.write("".join(lines))


def write_labels(data: dict[str, Any], path: Path, chunk: int = 200_000) -> None:
    """labels.jsonl lines byte for byte as mlgen feedback (store._append) writes them."""
    with path.open("w", encoding="utf-8") as fh:
        n = len(data["label_id"])
        for start in range(0, n, chunk):
            sl = slice(start, start + chunk)
            at = _stamps(data["labelled_at"][sl], millis=False)
            fh.write("".join(
                f'{{"id":"{i}","label":{lab},"labelled_at":"{a}"}}\n'
                for i, lab, a in zip(data["label_id"][sl].tolist(), data["label"][sl].tolist(),
                                     at.tolist(), strict=True)))


def write_project(project: Path, logs: Path, labels: Path) -> None:
    """An mlgen.yaml that points monitor at the data, and training metrics to compare with."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "artifacts").mkdir(exist_ok=True)
    (project / "artifacts" / "metrics.json").write_text(json.dumps(
        {"roc_auc": 0.75, "accuracy": 0.74, "f1": 0.3}))
    (project / "mlgen.yaml").write_text(
        f"apiVersion: mlgen/v1\nname: {MODEL}\n"
        "model:\n  features:\n    numeric: [x0, x1, x2, x3, x4, x5]\n"
        "    categorical: [segment, channel]\n"
        f"serve:\n  request_log:\n    path: {json.dumps(str(logs))}\n"
        "drift:\n  retrain_hook: none\n"
        f"monitor:\n  labels: {json.dumps(str(labels))}\n  window: {WINDOW_DAYS}d\n"
        f"  min_labels: 100\n  metrics: [{', '.join(METRICS)}]\n  on_drop: [alert]\n")


def write_reference(path: Path, rows: int = 50_000) -> None:
    """NannyML's reference period: a training-time test set drawn like the live data."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(16)
    score = rng.beta(2.0, 5.0, rows)
    ts = NOW_EPOCH - 30 * 86400 + np.sort(rng.uniform(0, 7 * 86400, rows))
    pd.DataFrame({"ts": pd.to_datetime(ts, unit="s"),
                  "label": (rng.random(rows) < score).astype(np.int64),
                  "prediction": (score >= 0.5).astype(np.int64), "score": score}).to_parquet(path)
