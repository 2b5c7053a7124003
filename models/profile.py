"""The reference profile: what the drift job compares a window of traffic against.

Written once at training time (`write_profile`), read by every drift run (`load_profile`).
It holds, per feature, only aggregates: fine quantile bin edges with the reference counts in
each bin, the coarser cut points PSI and Jensen-Shannon use, category frequencies, the missing
rate and summary statistics. No raw rows, so it is small (tens of KB) and safe to ship in an
image or attach to a pull request.

Why fine quantile bins: the drift job streams the current window and keeps only per-bin counts
against these edges, so the KS statistic and the Wasserstein distance are computed from binned
counts. With quantile edges every bin holds about 1/`bins` of the reference, which bounds the
error of both (see `mlgen.models.drift.stats`).

Binning convention (shared with the drift job, see `bin_sorted`): with unique edges
e_0 < ... < e_K, bin 0 holds x < e_0, bin j (1..K) holds e_{j-1} <= x < e_j, and bin K+1 holds
x >= e_K. When a feature has at most `bins`+1 distinct values the edges are exactly those values,
so each bin holds one value and every statistic is exact.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

PROFILE_SCHEMA = "mlgen.profile/v1"
DEFAULT_BINS = 100  # fine bins: KS and Wasserstein error is bounded by one bin's mass (~1%)
DEFAULT_PSI_BINS = 10  # deciles: the credit-risk convention PSI thresholds were calibrated on
DEFAULT_MAX_CATEGORIES = 1000  # beyond this, the rarest reference categories are lumped together
OTHER = "__other__"


class ProfileError(ValueError):
    """The profile file is missing, unreadable, or not a profile of a version we understand."""


@dataclass(frozen=True)
class NumericProfile:
    name: str
    count: int  # non-missing reference values
    missing: int
    edges: tuple[float, ...]  # unique, increasing
    counts: tuple[int, ...]  # len(edges) + 1 bins, see the module docstring
    means: tuple[float | None, ...]  # mean value in each bin (None when empty)
    psi_cuts: tuple[float, ...]  # interior cut points of the PSI bins, a subset of `edges`
    discrete: bool  # every distinct reference value is an edge: binned statistics are exact
    stats: Mapping[str, float] = field(default_factory=dict)

    kind = "numeric"

    @property
    def missing_rate(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0


@dataclass(frozen=True)
class CategoricalProfile:
    name: str
    count: int
    missing: int
    categories: Mapping[str, int]  # category -> reference count (most frequent first)
    other: int  # reference rows whose category was lumped into OTHER (beyond max_categories)

    kind = "categorical"

    @property
    def missing_rate(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class Profile:
    features: Mapping[str, FeatureProfile]
    rows: int
    created_at: str
    model: str | None = None
    source: str | None = None
    bins: int = DEFAULT_BINS
    psi_bins: int = DEFAULT_PSI_BINS

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(n for n, f in self.features.items() if isinstance(f, NumericProfile))

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(n for n, f in self.features.items() if isinstance(f, CategoricalProfile))


# --- binning, shared with the drift job ------------------------------------------------------


@dataclass(frozen=True)
class SortedSummary:
    """What one chunk of a numeric column contributes: counts and value sums per bin."""

    counts: np.ndarray  # int64, len(edges) + 1
    sums: np.ndarray  # float64, sum of the values in each bin: exact within-bin means
    nonfinite: int  # NaN and +-inf: counted as missing
    minimum: float
    maximum: float


def bin_sorted(values: np.ndarray, edges: np.ndarray) -> SortedSummary:
    """Bin a float64 array against `edges` by sorting it once.

    numpy 2's SIMD sort is several times faster than `searchsorted` of every value into the
    edges (measured: 17 ms vs 120 ms per million values with 100 edges), its cost does not
    grow with the number of bins (so fine bins are free), and on sorted data the per-bin sums
    are one cumulative sum. NaN sorts last and -inf/+inf to the ends.
    """
    s = np.sort(values, kind="quicksort")
    lo = int(np.searchsorted(s, -np.inf, side="right"))
    hi = int(np.searchsorted(s, np.inf, side="left"))
    finite = s[lo:hi]
    n = finite.size
    bounds = np.concatenate(([0], np.searchsorted(finite, edges, side="left"), [n]))
    counts = np.diff(bounds).astype(np.int64)
    cumulative = np.concatenate(([0.0], np.cumsum(finite)))
    sums = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    if n == 0:
        return SortedSummary(counts, sums, int(s.size), math.inf, -math.inf)
    return SortedSummary(counts, sums, int(s.size - n), float(finite[0]), float(finite[-1]))


def category_key(value: Any) -> str:
    """One string per category, so 3, 3.0 and "3" from different readers meet in one bucket."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- building -------------------------------------------------------------------------------


def _as_float_array(values: Iterable[Any]) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64, copy=False)
    out = np.full(arr.shape, np.nan)
    for i, v in enumerate(arr.tolist()):
        try:
            out[i] = float(v) if v is not None else np.nan
        except (TypeError, ValueError):
            pass  # a non-number in a numeric training column counts as missing
    return out


def build_numeric(name: str, values: Iterable[Any], *, bins: int, psi_bins: int) -> NumericProfile:
    x = _as_float_array(values)
    finite = x[np.isfinite(x)]
    missing = int(x.size - finite.size)
    if finite.size == 0:
        return NumericProfile(name, 0, missing, (), (0,), (None,), (), True, {})
    levels = np.linspace(0.0, 1.0, bins + 1)
    quantiles = np.quantile(finite, levels)
    distinct = np.unique(finite)
    discrete = distinct.size <= bins + 1
    # A low-cardinality feature gets one bin per value: exact statistics, no interpolation.
    edges = distinct if discrete else np.unique(quantiles)
    step = bins // psi_bins if bins % psi_bins == 0 else None
    if discrete:
        cut_source = np.quantile(finite, np.linspace(0.0, 1.0, psi_bins + 1))[1:-1]
        # Snap to existing edges so a PSI bin never splits a fine bin.
        cuts = np.unique(
            edges[np.searchsorted(edges, cut_source, side="left").clip(0, edges.size - 1)]
        )
    else:
        cut_levels = quantiles[step::step][:-1] if step else np.quantile(
            finite, np.linspace(0.0, 1.0, psi_bins + 1)[1:-1])
        cuts = np.unique(cut_levels)
    cuts = cuts[(cuts > edges[0])]  # a cut at the minimum would leave an empty first bin
    # One more edge just above the maximum: values equal to the reference maximum get a bin of
    # their own, so the reference has no mass above the last edge (KS and Wasserstein rely on it).
    edges = np.append(edges, np.nextafter(edges[-1], np.inf))
    summary = bin_sorted(finite, edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = summary.sums / summary.counts
    std = float(finite.std())
    pct = np.quantile(finite, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    stats = {
        "mean": float(finite.mean()), "std": std,
        "min": float(finite.min()), "max": float(finite.max()),
        "p01": float(pct[0]), "p05": float(pct[1]), "p25": float(pct[2]), "p50": float(pct[3]),
        "p75": float(pct[4]), "p95": float(pct[5]), "p99": float(pct[6]),
    }
    return NumericProfile(
        name=name, count=int(finite.size), missing=missing,
        edges=tuple(float(e) for e in edges), counts=tuple(int(c) for c in summary.counts),
        means=tuple(float(m) if c else None for m, c in zip(means, summary.counts, strict=True)),
        psi_cuts=tuple(float(c) for c in cuts), discrete=bool(discrete), stats=stats,
    )


def build_categorical(
    name: str, values: Iterable[Any], *, max_categories: int
) -> CategoricalProfile:
    counts: dict[str, int] = {}
    missing = 0
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing += 1
            continue
        key = category_key(v)
        counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ordered[:max_categories])
    other = sum(c for _, c in ordered[max_categories:])
    return CategoricalProfile(name, sum(counts.values()), missing, kept, other)


def _column(data: Any, name: str) -> Any:
    try:
        col = data[name]
    except (KeyError, IndexError) as exc:
        raise ProfileError(f"training data has no column {name!r} named in model.features") from exc
    return col.to_numpy() if hasattr(col, "to_numpy") else col


def build_profile(
    data: Any,
    *,
    numeric: Iterable[str],
    categorical: Iterable[str],
    model: str | None = None,
    source: str | None = None,
    bins: int = DEFAULT_BINS,
    psi_bins: int = DEFAULT_PSI_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> Profile:
    """Profile the training data: a pandas DataFrame or any mapping of column name -> values."""
    if bins < psi_bins or psi_bins < 2:
        raise ProfileError(f"bins ({bins}) must be >= psi_bins ({psi_bins}) >= 2")
    features: dict[str, FeatureProfile] = {}
    rows = 0
    for name in numeric:
        col = _column(data, name)
        rows = max(rows, len(col))
        features[name] = build_numeric(name, col, bins=bins, psi_bins=psi_bins)
    for name in categorical:
        col = _column(data, name)
        rows = max(rows, len(col))
        features[name] = build_categorical(name, col, max_categories=max_categories)
    return Profile(
        features=features, rows=rows, model=model, source=source, bins=bins, psi_bins=psi_bins,
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )


# --- JSON -----------------------------------------------------------------------------------


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for name, f in profile.features.items():
        common = {"type": f.kind, "count": f.count, "missing": f.missing,
                  "missing_rate": f.missing_rate}
        if isinstance(f, NumericProfile):
            features[name] = {**common, "discrete": f.discrete, "edges": list(f.edges),
                              "counts": list(f.counts), "means": list(f.means),
                              "psi_cuts": list(f.psi_cuts),
                              "stats": dict(f.stats)}
        else:
            features[name] = {**common, "categories": dict(f.categories), "other": f.other}
    return {
        "schema": PROFILE_SCHEMA, "created_at": profile.created_at, "model": profile.model,
        "source": profile.source, "rows": profile.rows,
        "settings": {"bins": profile.bins, "psi_bins": profile.psi_bins},
        "features": features,
    }


def profile_from_dict(doc: Mapping[str, Any], where: str = "profile") -> Profile:
    if not isinstance(doc, Mapping) or doc.get("schema") != PROFILE_SCHEMA:
        found = doc.get("schema") if isinstance(doc, Mapping) else type(doc).__name__
        raise ProfileError(
            f"{where}: not a reference profile of version {PROFILE_SCHEMA} (schema: {found!r}); "
            "regenerate it with the training step (mlgen.models.profile.write_profile)"
        )
    features: dict[str, FeatureProfile] = {}
    try:
        for name, f in doc["features"].items():
            if f["type"] == "numeric":
                edges = tuple(float(e) for e in f["edges"])
                counts = tuple(int(c) for c in f["counts"])
                if len(counts) != len(edges) + 1 or list(edges) != sorted(set(edges)):
                    raise ProfileError(f"{where}: features.{name}: edges/counts are inconsistent")
                means = tuple(None if m is None else float(m) for m in f["means"])
                if len(means) != len(counts):
                    raise ProfileError(f"{where}: features.{name}: means/counts are inconsistent")
                features[name] = NumericProfile(
                    name, int(f["count"]), int(f["missing"]), edges, counts, means,
                    tuple(float(c) for c in f["psi_cuts"]), bool(f.get("discrete", False)),
                    {k: float(v) for k, v in f.get("stats", {}).items()},
                )
            elif f["type"] == "categorical":
                features[name] = CategoricalProfile(
                    name, int(f["count"]), int(f["missing"]),
                    {str(k): int(v) for k, v in f["categories"].items()}, int(f.get("other", 0)),
                )
            else:
                raise ProfileError(f"{where}: features.{name}.type: unknown type {f['type']!r}")
        settings = doc.get("settings", {})
        return Profile(
            features=features, rows=int(doc.get("rows", 0)), created_at=str(doc.get("created_at")),
            model=doc.get("model"), source=doc.get("source"),
            bins=int(settings.get("bins", DEFAULT_BINS)),
            psi_bins=int(settings.get("psi_bins", DEFAULT_PSI_BINS)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ProfileError):
            raise
        raise ProfileError(f"{where}: malformed profile ({type(exc).__name__}: {exc})") from exc


def write_profile(
    data: Any,
    path: str | os.PathLike[str],
    *,
    numeric: Iterable[str],
    categorical: Iterable[str],
    model: str | None = None,
    source: str | None = None,
    bins: int = DEFAULT_BINS,
    psi_bins: int = DEFAULT_PSI_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> Profile:
    """Profile the training data and write it as JSON to `path` (atomically); return it."""
    profile = build_profile(
        data, numeric=numeric, categorical=categorical, model=model, source=source,
        bins=bins, psi_bins=psi_bins, max_categories=max_categories,
    )
    save_profile(profile, path)
    return profile


def save_profile(profile: Profile, path: str | os.PathLike[str]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(profile_to_dict(profile), separators=(",", ":"), allow_nan=False)
    # Atomic replace: a drift job reading the profile mid-write must never see half a file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".profile-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    os.replace(tmp, target)


def load_profile(path: str | os.PathLike[str]) -> Profile:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProfileError(
            f"{p}: reference profile not found; the training step writes it "
            "(mlgen.models.profile.write_profile) at drift.reference"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{p}: cannot read the reference profile: {exc}") from exc
    return profile_from_dict(doc, where=str(p))
