"""Compare a streamed window against the reference profile: per-feature scores and a verdict.

The `auto` method, and why: numeric features use the normalised Wasserstein distance (the
area between the two CDFs, in units of the reference standard deviation) and categorical ones
the Jensen-Shannon distance. Both are effect sizes: they measure how far the distributions
moved, not how sure we are that they moved, so they do not start flagging everything when the
window grows to millions of rows, as the KS and chi-square p-values do (seen on 1M rows, see
benchmarks/drift_bench.py and tests/models/drift). One threshold (0.1) works across features of
any scale; a shift beyond the reference range keeps counting (PSI saturates in its tail bins);
and they are what Evidently uses on large samples, so teams moving from it get the same verdicts.
PSI (0.2), KS and chi-square (p < 0.05) stay available per feature type and are always reported.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from mlgen.models import contract
from mlgen.models.drift import stats
from mlgen.models.drift.accumulate import CategoricalAccumulator, NumericAccumulator
from mlgen.models.profile import OTHER, CategoricalProfile, NumericProfile

NUMERIC_METHODS = ("wasserstein", "psi", "jensenshannon", "ks")
CATEGORICAL_METHODS = ("jensenshannon", "psi", "chi2")
AUTO = {"numeric": "wasserstein", "categorical": "jensenshannon"}
ALIASES = {"js": "jensenshannon", "jensen_shannon": "jensenshannon", "chisquare": "chi2",
           "chi_square": "chi2", "wasserstein_distance": "wasserstein", "kstest": "ks"}
PVALUE_METHODS = frozenset({"ks", "chi2"})


@dataclass(frozen=True)
class Thresholds:
    """Drift when a distance is >= its threshold, or a p-value is < its threshold."""

    wasserstein: float = contract.DRIFT_WASSERSTEIN
    psi: float = contract.DRIFT_PSI
    jensenshannon: float = contract.DRIFT_JENSENSHANNON
    ks: float = contract.DRIFT_KS_PVALUE
    chi2: float = contract.DRIFT_CHI2_PVALUE
    missing_rate: float = contract.DRIFT_MISSING_RATE
    share: float = contract.DRIFT_SHARE

    def for_method(self, method: str) -> float:
        return float(getattr(self, method))


@dataclass(frozen=True)
class DriftSettings:
    numeric_method: str = "auto"
    categorical_method: str = "auto"
    thresholds: Thresholds = field(default_factory=Thresholds)
    min_rows: int = 100  # fewer current values: too noisy to judge; reported, never drift
    chunk_rows: int = 50_000  # peak RSS ~170-270 MB whatever the rows; bigger is not faster

    def method_for(self, kind: str) -> str:
        chosen = self.numeric_method if kind == "numeric" else self.categorical_method
        return AUTO[kind] if chosen == "auto" else chosen


def normalise_method(kind: str, name: str) -> str:
    """The canonical method name for a feature type; ValueError names the allowed ones."""
    name = ALIASES.get(name.strip().lower(), name.strip().lower())
    allowed = NUMERIC_METHODS if kind == "numeric" else CATEGORICAL_METHODS
    if name != "auto" and name not in allowed:
        raise ValueError(f"unknown {kind} drift method {name!r}; use auto or one of "
                         + ", ".join(allowed))
    return name


def with_methods(
    settings: DriftSettings, numeric: str | None, categorical: str | None
) -> DriftSettings:
    return replace(
        settings,
        numeric_method=normalise_method("numeric", numeric or settings.numeric_method),
        categorical_method=normalise_method(
            "categorical", categorical or settings.categorical_method
        ),
    )


@dataclass(frozen=True)
class FeatureResult:
    name: str
    kind: str
    status: str  # ok | all_missing | missing_column | insufficient_data | no_reference
    method: str
    score: float | None
    threshold: float
    drifted: bool
    rows: int  # current rows seen for this feature (missing included)
    count: int  # non-missing current values
    missing: Mapping[str, Any]
    scores: Mapping[str, float]  # every statistic computed, whatever the method
    histogram: Mapping[str, Any] | None = None
    unseen: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()

    @property
    def evaluated(self) -> bool:
        return self.status in {"ok", "all_missing"}

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["notes"] = list(self.notes)
        out["scores"] = {k: _finite(v) for k, v in self.scores.items()}
        out["score"] = _finite(self.score)
        return out


def _finite(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def _missing(ref_rate: float, rows: int, missing: int, limit: float) -> dict[str, Any]:
    cur = missing / rows if rows else 0.0
    change = cur - ref_rate
    return {"reference": ref_rate, "current": cur, "change": change,
            "drifted": bool(rows and abs(change) > limit)}


def _decide(method: str, score: float, threshold: float) -> bool:
    if not math.isfinite(score):
        return False
    return score < threshold if method in PVALUE_METHODS else score >= threshold


def _start(acc: NumericAccumulator | CategoricalAccumulator, kind: str, invalid_word: str,
           settings: DriftSettings) -> tuple[dict[str, Any], list[str], FeatureResult | None]:
    """What both feature kinds share: the result's common fields, notes so far, and the
    early answer when there is nothing to compare (column absent, no reference, no values)."""
    prof = acc.profile
    method = settings.method_for(kind)
    th = settings.thresholds
    missing = _missing(prof.missing_rate, acc.rows, acc.missing, th.missing_rate)
    notes: list[str] = []
    if acc.invalid:
        notes.append(f"{acc.invalid} values were not {invalid_word} and count as missing")
    base: dict[str, Any] = {"name": prof.name, "kind": kind, "method": method,
                            "threshold": th.for_method(method), "rows": acc.rows,
                            "count": acc.count, "missing": missing}
    early: FeatureResult | None = None
    if not acc.present:
        early = FeatureResult(status="missing_column", score=None, drifted=False, scores={},
                              notes=("column absent from the current window",), **base)
    elif prof.count == 0:
        early = FeatureResult(status="no_reference", score=None, drifted=missing["drifted"],
                              scores={}, notes=("the reference had no value",), **base)
    elif acc.count == 0 and acc.rows < settings.min_rows:
        early = FeatureResult(status="insufficient_data", score=None, drifted=False, scores={},
                              notes=(*notes, _too_few(acc.rows, settings)), **base)
    elif acc.count == 0:
        early = FeatureResult(status="all_missing", score=None, drifted=missing["drifted"],
                              scores={}, notes=(*notes, "no non-missing value in the window"),
                              **base)
    return base, notes, early


def evaluate_numeric(acc: NumericAccumulator, settings: DriftSettings) -> FeatureResult:
    prof: NumericProfile = acc.profile
    base, notes, early = _start(acc, "numeric", "numbers", settings)
    if early is not None:
        return early
    method, missing = base["method"], base["missing"]
    ref_counts = np.asarray(prof.counts, dtype=np.int64)
    ref_sums = np.array([0.0 if m is None else m * c for m, c in zip(prof.means, prof.counts,
                                                                        strict=True)])
    edges = np.asarray(prof.edges)
    # PSI and JS on the coarse (decile) bins: fine bins would make them mostly sampling noise.
    coarse = np.searchsorted(np.asarray(prof.psi_cuts), np.concatenate(([-np.inf], edges)),
                             side="right")
    n_coarse = len(prof.psi_cuts) + 1
    p_coarse = np.bincount(coarse, weights=ref_counts, minlength=n_coarse)
    q_coarse = np.bincount(coarse, weights=acc.counts, minlength=n_coarse)
    ks = stats.ks_from_bins(ref_counts, acc.counts)
    w = stats.wasserstein_from_bins(edges, ref_counts, ref_sums, acc.counts, acc.sums)
    std = prof.stats.get("std", 0.0)
    scores = {
        "wasserstein": w / max(std, 1e-3),  # normalised as Evidently: by max(std, 0.001)
        "wasserstein_raw": w,
        "psi": stats.psi(p_coarse, q_coarse),
        "jensenshannon": stats.jensen_shannon(p_coarse, q_coarse),
        "ks": ks.pvalue,
        "ks_statistic": ks.statistic,
        "ks_statistic_upper": ks.upper,
        "mean": float(acc.sums.sum() / acc.count),
        "reference_mean": float(prof.stats.get("mean", float("nan"))),
        "min": acc.minimum,
        "max": acc.maximum,
    }
    cuts = list(prof.psi_cuts)
    histogram = {
        "kind": "numeric",
        "edges": [prof.stats.get("min"), *cuts, prof.stats.get("max")],
        "reference": (p_coarse / max(p_coarse.sum(), 1)).tolist(),
        "current": (q_coarse / max(q_coarse.sum(), 1)).tolist(),
    }
    outside = int(acc.counts[0] + acc.counts[-1])
    if outside / acc.count >= 0.01:
        notes.append(f"{outside / acc.count:.1%} of values lie outside the reference range")
    return _finish(base, method, scores, missing, notes, histogram, None, acc.count, settings)


def evaluate_categorical(acc: CategoricalAccumulator, settings: DriftSettings) -> FeatureResult:
    prof: CategoricalProfile = acc.profile
    base, notes, early = _start(acc, "categorical", "categories", settings)
    if early is not None:
        return early
    method, missing = base["method"], base["missing"]
    known = dict(prof.categories)
    unseen = {k: v for k, v in acc.counts.items() if k not in known}
    cats = list(known)
    p = [known[c] for c in cats]
    q = [acc.counts.get(c, 0) for c in cats]
    if prof.other:
        # The profile lumped its rarest categories: a category it did not list may be one of them.
        cats.append(OTHER)
        p.append(prof.other)
        q.append(sum(unseen.values()))
    else:
        for k, v in sorted(unseen.items(), key=lambda kv: -kv[1]):
            cats.append(k)
            p.append(0)
            q.append(v)
    p_arr, q_arr = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    chi = stats.chi2_homogeneity(p_arr, q_arr)
    scores = {
        "jensenshannon": stats.jensen_shannon(p_arr, q_arr),
        "psi": stats.psi(p_arr, q_arr),
        "chi2": chi.pvalue,
        "chi2_statistic": chi.statistic,
    }
    unseen_count = sum(unseen.values())
    unseen_info = {
        "count": unseen_count,
        "share": unseen_count / acc.count,
        "categories": len(unseen),
        "examples": [k for k, _ in sorted(unseen.items(), key=lambda kv: -kv[1])[:10]],
    }
    if unseen_count:
        notes.append(f"{len(unseen)} categories unseen in the reference "
                     f"({unseen_info['share']:.1%} of values)")
    ps, qs = p_arr / p_arr.sum(), q_arr / q_arr.sum()
    order = np.argsort(-np.maximum(ps, qs))[:15]
    histogram = {
        "kind": "categorical",
        "labels": [cats[i] for i in order],
        "reference": [float(ps[i]) for i in order],
        "current": [float(qs[i]) for i in order],
    }
    return _finish(
        base, method, scores, missing, notes, histogram, unseen_info, acc.count, settings
    )


def _too_few(count: int, settings: DriftSettings) -> str:
    return f"too few rows: {count} values (< drift.min_rows {settings.min_rows}), not judged"


def _finish(base: dict[str, Any], method: str, scores: dict[str, float], missing: Mapping[str, Any],
            notes: list[str], histogram: dict[str, Any], unseen: dict[str, Any] | None, count: int,
            settings: DriftSettings) -> FeatureResult:
    score = scores[method]
    if count < settings.min_rows:
        notes.append(_too_few(count, settings))
        return FeatureResult(status="insufficient_data", score=score, drifted=False, scores=scores,
                             histogram=histogram, unseen=unseen, notes=tuple(notes), **base)
    drifted = _decide(method, score, base["threshold"]) or bool(missing["drifted"])
    if missing["drifted"]:
        notes.append(f"missing rate moved from {missing['reference']:.1%} to "
                     f"{missing['current']:.1%}")
    return FeatureResult(status="ok", score=score, drifted=drifted, scores=scores,
                         histogram=histogram, unseen=unseen, notes=tuple(notes), **base)
