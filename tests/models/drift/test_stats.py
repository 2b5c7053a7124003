"""The binned statistics against scipy and against PSI computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
from mlgen.models.drift import stats
from mlgen.models.profile import bin_sorted, build_numeric
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance


def _binned(a: np.ndarray, b: np.ndarray, bins: int = 100):
    prof = build_numeric("x", a, bins=bins, psi_bins=10)
    edges = np.asarray(prof.edges)
    ref, cur = bin_sorted(a, edges), bin_sorted(b, edges)
    assert ref.counts.tolist() == list(prof.counts)  # the profile bins the same way
    return prof, edges, ref, cur


def test_psi_matches_a_hand_computation_exactly() -> None:
    # Reference 1..20 with 4 PSI bins. 20 distinct values fit in 20 fine bins, so the profile is
    # discrete and the quartile cuts (5.75, 10.5, 15.25) snap to the next value: 6, 11, 16.
    ref = np.arange(1.0, 21.0)
    cur = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 30, 30, 30, 30.0])
    prof = build_numeric("x", ref, bins=20, psi_bins=4)
    assert prof.discrete and prof.psi_cuts == (6.0, 11.0, 16.0)
    # By hand: reference 5/5/5/5 of 20; current 5 (1..5), 5 (6..10), 2 (11, 12), 4 (30s) of 16.
    p = [0.25, 0.25, 0.25, 0.25]
    q = [5 / 16, 5 / 16, 2 / 16, 4 / 16]
    expected = sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q))
    edges = np.asarray(prof.edges)
    coarse = np.searchsorted(prof.psi_cuts, np.concatenate(([-np.inf], edges)), side="right")
    got = stats.psi(np.bincount(coarse, weights=bin_sorted(ref, edges).counts, minlength=4),
                    np.bincount(coarse, weights=bin_sorted(cur, edges).counts, minlength=4))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # 2 x 0.0625 ln 1.25 + 0.125 ln 2, worked out on paper
    assert got == pytest.approx(0.125 * math.log(1.25) + 0.125 * math.log(2), rel=1e-12)


def test_psi_floors_empty_bins_at_epsilon() -> None:
    got = stats.psi(np.array([10, 0]), np.array([5, 5]))
    p, q = [1.0, 1e-4], [0.5, 0.5]
    assert got == pytest.approx(sum((b - a) * math.log(b / a) for a, b in zip(p, q)), rel=1e-12)


@pytest.mark.parametrize("seed,n,m,shift,scale", [
    (1, 2000, 1500, 0.0, 1.0), (2, 5000, 3000, 0.3, 1.2), (3, 1000, 800, 1.0, 1.0),
    (4, 3000, 3000, -2.5, 0.7), (5, 400, 300, 0.1, 2.0),
])
def test_ks_statistic_is_bracketed_and_wasserstein_close(seed: int, n: int, m: int, shift: float,
                                                          scale: float) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(shift, scale, size=m)
    _, edges, ref, cur = _binned(a, b)
    ks = stats.ks_from_bins(ref.counts, cur.counts)
    exact = ks_2samp(a, b).statistic
    # Proven bracket: the edge gap is a lower bound; a bin's mass bounds what hides inside it.
    assert ks.statistic <= exact + 1e-12 <= ks.upper + 2e-12
    assert ks.upper - ks.statistic <= 1.0 / 100 + np.max(cur.counts) / m + 1e-12
    w = stats.wasserstein_from_bins(edges, ref.counts, ref.sums, cur.counts, cur.sums)
    w_exact = wasserstein_distance(a, b)
    assert abs(w - w_exact) <= stats.wasserstein_error_bound(edges, ref.counts, cur.counts)
    # In practice (only bins where the CDF gap changes sign are interpolated) the error is far
    # smaller: 0.005 reference std is 5% of the 0.1 normalised-Wasserstein threshold.
    assert abs(w - w_exact) <= 0.005 * a.std()


def test_discrete_features_are_exact_against_scipy() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 20, 3000).astype(float)
    b = rng.integers(2, 25, 2000).astype(float)
    prof, edges, ref, cur = _binned(a, b)
    assert prof.discrete
    ks = stats.ks_from_bins(ref.counts, cur.counts)
    exact = ks_2samp(a, b, method="asymp")
    assert ks.statistic == pytest.approx(exact.statistic, abs=1e-12)
    assert ks.pvalue == pytest.approx(exact.pvalue, rel=1e-9)
    w = stats.wasserstein_from_bins(edges, ref.counts, ref.sums, cur.counts, cur.sums)
    assert w == pytest.approx(wasserstein_distance(a, b), rel=1e-12)


def test_chi2_and_js_match_scipy() -> None:
    p = np.array([400, 250, 150, 120, 80, 0])  # the last category is unseen in the reference
    q = np.array([300, 280, 200, 100, 90, 30])
    c = stats.chi2_homogeneity(p, q)
    res = chi2_contingency(np.vstack([p, q]))
    assert c.statistic == pytest.approx(res.statistic, rel=1e-12)
    assert c.pvalue == pytest.approx(res.pvalue, rel=1e-9)
    assert c.dof == res.dof
    assert stats.jensen_shannon(p, q) == pytest.approx(jensenshannon(p / p.sum(), q / q.sum()),
                                                       rel=1e-12)


def test_identical_samples_score_zero() -> None:
    counts = np.array([0, 5, 7, 9, 3, 0])
    assert stats.psi(counts, counts) == 0.0
    assert stats.jensen_shannon(counts, counts) == 0.0
    assert stats.ks_from_bins(counts, counts).statistic == 0.0
