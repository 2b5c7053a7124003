"""Performance metrics with confidence intervals, vectorised with numpy.

Intervals (95 %):
- accuracy, precision, recall, f1: bootstrap with a fixed seed (MONITOR_SEED), done on the
  confusion counts: resampling n rows with replacement is a multinomial draw of the four
  cells, so B = 1000 resamples cost microseconds whatever n is, and equal a row bootstrap;
- roc_auc: analytic, Hanley & McNeil (1982);
- rmse, mae: analytic, normal approximation (the delta method for rmse);
- brier: analytic, normal approximation of the mean squared error of the score.
Names follow the gate's metrics file: roc_auc, accuracy, f1, precision, recall, brier, rmse,
mae, r2 (r2 has no interval).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MONITOR_SEED = 20261203
BOOTSTRAP = 1000
Z95 = 1.959963984540054
HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "f1": True, "precision": True,
                    "recall": True, "r2": True, "brier": False, "rmse": False, "mae": False,
                    "log_loss": False}
CLASSIFICATION = ("roc_auc", "accuracy", "f1", "precision", "recall", "brier")
REGRESSION = ("rmse", "mae", "r2")


@dataclass(frozen=True)
class Estimate:
    name: str
    value: float
    low: float | None
    high: float | None
    method: str  # "bootstrap", "analytic" or "none"

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high,
                "ci_method": self.method}


def _confusion(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    tp = int(np.count_nonzero(y & yhat))
    fp = int(np.count_nonzero(~y & yhat))
    fn = int(np.count_nonzero(y & ~yhat))
    return np.array([tp, fp, fn, len(y) - tp - fp - fn], dtype=np.int64)


def _from_cells(cells: np.ndarray, name: str) -> np.ndarray:
    tp, fp, fn, tn = (cells[..., i].astype(np.float64) for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "accuracy":
            out = (tp + tn) / (tp + fp + fn + tn)
        elif name == "precision":
            out = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        elif name == "recall":
            out = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        else:  # f1
            out = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return np.asarray(out)


def confusion_metric(name: str, y: np.ndarray, yhat: np.ndarray) -> Estimate:
    cells = _confusion(y, yhat)
    value = float(_from_cells(cells, name))
    rng = np.random.default_rng(MONITOR_SEED)
    draws = rng.multinomial(int(cells.sum()), cells / cells.sum(), size=BOOTSTRAP)
    boot = _from_cells(draws, name)
    low, high = np.quantile(boot, [0.025, 0.975])
    return Estimate(name, value, float(low), float(high), "bootstrap")


def roc_auc(y: np.ndarray, score: np.ndarray) -> Estimate:
    n1 = int(np.count_nonzero(y))
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return Estimate("roc_auc", math.nan, None, None, "none")
    # Mann-Whitney U: for each positive, the negatives scored below it, plus half of those
    # tied with it (average ranks, as roc_auc_score). Counted with two sorted copies and a
    # binary search, so the temporaries are about two arrays of the window, not five; the
    # counts are integers, so U is exact and the same as from a rank sum.
    pos = score[y]
    pos.sort()
    neg = score[~y]
    neg.sort()
    below = int(np.searchsorted(neg, pos, side="left").sum())
    upto = int(np.searchsorted(neg, pos, side="right").sum())
    del pos, neg
    auc = (below + upto) / 2.0 / (n1 * n0)
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n0 - 1) * (q2 - auc * auc)) / (n1 * n0)
    half = Z95 * math.sqrt(max(var, 0.0))
    return Estimate("roc_auc", float(auc), max(0.0, auc - half), min(1.0, auc + half), "analytic")


def _mean_ci(name: str, values: np.ndarray) -> Estimate:
    """Mean and its normal interval. `values` must be in a canonical order (sorted), so the
    floating-point sums, and so the report, do not depend on the rows' order (the join's
    parts, the files' order)."""
    mean = float(values.mean())
    half = Z95 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return Estimate(name, mean, mean - half, mean + half, "analytic")


def _sorted(values: np.ndarray) -> np.ndarray:
    values.sort()  # in place: callers pass a temporary
    return values


def brier(y: np.ndarray, score: np.ndarray) -> Estimate:
    """Mean squared error of the score: (score - y) ** 2 in one window-long array, sorted."""
    squared = y.astype(np.float64)
    np.subtract(score, squared, out=squared)
    np.square(squared, out=squared)
    return _mean_ci("brier", _sorted(squared))


def regression_metric(name: str, y: np.ndarray, yhat: np.ndarray) -> Estimate:
    err = yhat - y
    if name == "mae":
        return _mean_ci("mae", _sorted(np.abs(err)))
    np.square(err, out=err)
    err.sort()
    if name == "rmse":
        mse = _mean_ci("mse", err)
        rmse = math.sqrt(mse.value)
        # delta method: se(rmse) = se(mse) / (2 rmse)
        half = (mse.high - mse.value) / (2 * rmse) if rmse > 0 and mse.high is not None else 0.0
        return Estimate("rmse", rmse, max(0.0, rmse - half), rmse + half, "analytic")
    ys = _sorted(y.copy())
    ys -= ys.mean()
    np.square(ys, out=ys)
    ys.sort()
    total = float(ys.sum())
    r2 = 1.0 - float(err.sum()) / total if total > 0 else math.nan
    return Estimate("r2", r2, None, None, "none")


def compute(names: Iterable[str], *, y: np.ndarray, prediction: np.ndarray,
            score: np.ndarray | None) -> dict[str, Estimate]:
    """`y`/`prediction` are booleans (positive class) for classification, floats otherwise.
    `score` is the positive-class probability, or None when the log has none."""
    out: dict[str, Estimate] = {}
    if len(y) == 0:
        return out
    for name in names:
        if name in ("accuracy", "precision", "recall", "f1"):
            out[name] = confusion_metric(name, y, prediction)
        elif name == "roc_auc" and score is not None:
            out[name] = roc_auc(y, score)
        elif name == "brier" and score is not None:
            out[name] = brier(y, score)
        elif name in REGRESSION:
            out[name] = regression_metric(name, y, prediction)
    return out
