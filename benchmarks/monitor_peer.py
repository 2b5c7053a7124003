"""The peers of benchmarks/monitor_bench.py, one process each (runnable on its own):

    python benchmarks/monitor_peer.py pandas  ARGS_JSON   # pandas merge + scikit-learn metrics
    python benchmarks/monitor_peer.py nannyml ARGS_JSON   # the same join + NannyML (own venv)

Both read the same files as `mlgen monitor` with plain pandas and the same semantics (the last
prediction and the last label per id win, the window is [now - window_days, now]); prints one
JSON line: metrics, counts, core_seconds (after the imports, as mlgen's elapsed_seconds).
Standalone on purpose: the NannyML venv has neither mlgen nor pandas 3.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any


def join(pd: Any, args: dict[str, Any]) -> tuple[Any, dict[str, int]]:
    """The labelled predictions of the window (columns label, prediction, score, ts) and the
    counts mlgen reports."""
    def read(path: str) -> Any:
        if args["engine"] == "pyarrow":
            return pd.read_json(path, lines=True, engine="pyarrow")
        return pd.read_json(path, lines=True, dtype={"id": str, "ts": str})

    preds = pd.concat([read(f)[["ts", "model", "id", "prediction", "score"]]
                       for f in args["logs"]], ignore_index=True)
    preds = preds[preds["model"] == args["model"]]
    dup_preds = int(preds["id"].duplicated(keep="last").sum())
    preds = preds.drop_duplicates("id", keep="last")
    preds["ts"] = pd.to_datetime(preds["ts"], utc=True, format="ISO8601")
    labels = read(args["labels"])
    labels_read = len(labels)
    labels = labels.drop_duplicates("id", keep="last")
    merged = labels.merge(preds[["id", "ts", "prediction", "score"]], on="id", how="left",
                          indicator=True)
    known = merged["_merge"] == "both"
    end = pd.Timestamp(args["now"])
    start = end - pd.Timedelta(days=args["window_days"])
    inside = known & (merged["ts"] >= start) & (merged["ts"] <= end)
    used = merged[inside]
    counts = {"labels_read": labels_read, "duplicate_labels": labels_read - len(labels),
              "unknown_ids": int((~known).sum()), "late_labels": int((known & ~inside).sum()),
              "labelled": len(used),
              "predictions_in_window": int(((preds["ts"] >= start) & (preds["ts"] <= end)).sum()),
              "duplicate_prediction_ids": dup_preds}
    return used, counts


def pandas_sklearn(args: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    t0 = time.perf_counter()
    used, counts = join(pd, args)
    y = used["label"].astype(int).to_numpy()
    yhat = used["prediction"].astype(int).to_numpy()
    score = used["score"].astype(float).to_numpy()
    metrics = {"roc_auc": roc_auc_score(y, score), "accuracy": accuracy_score(y, yhat),
               "f1": f1_score(y, yhat), "precision": precision_score(y, yhat),
               "recall": recall_score(y, yhat), "brier": brier_score_loss(y, score)}
    return {"metrics": {k: float(v) for k, v in metrics.items()}, "counts": counts,
            "core_seconds": time.perf_counter() - t0}


def nannyml_realized(args: dict[str, Any]) -> dict[str, Any]:
    import nannyml as nml
    import pandas as pd

    t0 = time.perf_counter()
    used, _ = join(pd, args)
    analysis = pd.DataFrame({"ts": used["ts"].dt.tz_localize(None),
                             "label": used["label"].astype(int).to_numpy(),
                             "prediction": used["prediction"].astype(int).to_numpy(),
                             "score": used["score"].astype(float).to_numpy()})
    calc = nml.PerformanceCalculator(
        y_pred_proba="score", y_pred="prediction", y_true="label", timestamp_column_name="ts",
        problem_type="classification_binary", metrics=args["metrics"], chunk_number=1)
    calc.fit(pd.read_parquet(args["reference"]))
    res = calc.calculate(analysis).filter(period="analysis").to_df()
    metrics = {m: float(res[(m, "value")].iloc[0]) for m in args["metrics"]}
    return {"metrics": metrics, "counts": {"labelled": len(analysis)},
            "core_seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    peer, raw = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps((pandas_sklearn if peer == "pandas" else nannyml_realized)(raw)))
