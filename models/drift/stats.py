"""Drift statistics computed from binned counts, never from raw rows.

The current window is streamed, so all we keep of it is counts per reference bin (plus a few
sums). Each function here takes reference counts `p` and current counts `q` over the same bins.

Approximations, and why they are safe (tests check them against scipy on small data):
- KS statistic: both empirical CDFs are known exactly at every bin edge, so the largest gap
  over the edges is a lower bound of the true statistic. Inside a bin the gap can move by at
  most that bin's mass, so the true value lies in [lower, upper] (`ks_from_bins` returns both).
  With 100 quantile bins that is about 0.01 plus the current window's mass in the bin.
- Wasserstein-1: the area between the two CDFs. With counts and value sums per bin, the
  integral of each CDF over a bin is exact, so the area is exact over every bin where the CDF
  gap keeps its sign, and outside the reference range. Only a bin where the gap changes sign is
  interpolated; its error is at most width x max(p_j, q_j), so a few such bins out of 100
  quantile bins cost little. A discrete profile (one bin per value) is exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from mlgen.models.drift.distributions import chi2_sf, kstwo_sf

PSI_EPSILON = 1e-4  # an empty bin's share is raised to this, so PSI stays finite (as Evidently)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype=float)


def psi(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Population stability index: sum over bins of (q - p) * ln(q / p), shares floored at 1e-4."""
    p = np.maximum(_shares(np.asarray(p_counts, dtype=float)), PSI_EPSILON)
    q = np.maximum(_shares(np.asarray(q_counts, dtype=float)), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence), natural log as scipy's default.

    Natural log (range 0..sqrt(ln 2) = 0.83) keeps Evidently's 0.1 threshold meaning the same.
    """
    p = _shares(np.asarray(p_counts, dtype=float))
    q = _shares(np.asarray(q_counts, dtype=float))
    m = (p + q) / 2.0

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / m[mask])))

    return math.sqrt(max((kl(p) + kl(q)) / 2.0, 0.0))


@dataclass(frozen=True)
class KS:
    statistic: float  # lower bound: the largest CDF gap over the bin edges
    upper: float  # the true two-sample statistic is at most this
    pvalue: float  # asymptotic (Smirnov) p-value of `statistic`, as scipy's method="asymp"


def ks_from_bins(p_counts: np.ndarray, q_counts: np.ndarray) -> KS:
    p = _shares(np.asarray(p_counts, dtype=float))
    q = _shares(np.asarray(q_counts, dtype=float))
    # gap[j] = F_ref - F_cur just left of bin j's lower edge (gap[0] = 0 at -inf).
    gap = np.concatenate(([0.0], np.cumsum(p - q)))
    lower = float(np.max(np.abs(gap)))
    upper = float(max(lower, np.max(np.maximum(np.abs(gap[:-1] + p), np.abs(gap[:-1] - q)))))
    n, m = float(np.sum(p_counts)), float(np.sum(q_counts))
    return KS(lower, min(upper, 1.0), ks_pvalue(lower, n, m))


def ks_pvalue(d: float, n: float, m: float) -> float:
    """scipy.stats.ks_2samp's method="asymp": kstwo.sf(d, round(n m / (n + m))), without scipy."""
    if n <= 0 or m <= 0:
        return float("nan")
    big, small = max(n, m), min(n, m)
    en = big * small / (big + small)
    return kstwo_sf(d, max(1, round(en)))


def wasserstein_from_bins(
    edges: np.ndarray,
    p_counts: np.ndarray,
    p_sums: np.ndarray,
    q_counts: np.ndarray,
    q_sums: np.ndarray,
) -> float:
    """Wasserstein-1 distance between two binned samples (same units as the feature).

    Bins: 0 is x < e_0, j = 1..K is [e_{j-1}, e_j), K+1 is x >= e_K (see mlgen.models.profile);
    `*_sums` are the sums of the values in each bin. Over a bin [a, b) a sample's CDF integrates
    to (mass before a) * (b - a) + mass_j * (b - mean_j), exactly. So where F_ref - F_cur keeps
    one sign across a bin, the area |integral(F_ref - F_cur)| is exact; only a bin where the gap
    changes sign is interpolated linearly. Below e_0 and above e_K the area is exact too.
    """
    p_n, q_n = float(np.sum(p_counts)), float(np.sum(q_counts))
    if p_n == 0 or q_n == 0:
        return float("nan")
    edges = np.asarray(edges, dtype=float)
    p = np.asarray(p_counts, dtype=float) / p_n
    q = np.asarray(q_counts, dtype=float) / q_n
    ps = np.asarray(p_sums, dtype=float) / p_n  # mass x mean, per bin
    qs = np.asarray(q_sums, dtype=float) / q_n
    e0, ek = edges[0], edges[-1]
    # Outside [e_0, e_K] the profile has no reference mass, so the area is E[(e_0 - X)+] and
    # E[(X - e_K)+] of one sample minus the other's (both kept for a profile of other origin).
    below = abs((e0 * q[0] - qs[0]) - (e0 * p[0] - ps[0]))
    above = abs((qs[-1] - ek * q[-1]) - (ps[-1] - ek * p[-1]))
    # gap[j] = F_ref - F_cur counting bins 0..j; bin j = 1..K runs from gap[j-1] to gap[j].
    gap = np.cumsum(p - q)
    left, right = gap[:-2], gap[1:-1]
    a, b = edges[:-1], edges[1:]
    width = b - a
    # Exact signed integral over each interior bin: left * width + (mass_j * b - sum_j) terms.
    signed = left * width + (p[1:-1] * b - ps[1:-1]) - (q[1:-1] * b - qs[1:-1])
    la, lb = np.abs(left), np.abs(right)
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = np.where(la + lb > 0, width * (la * la + lb * lb) / (2.0 * (la + lb)), 0.0)
    inner = np.where(left * right >= 0, np.abs(signed), crossing)
    return float(np.sum(inner) + below + above)


def wasserstein_error_bound(edges: np.ndarray, p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Largest possible error of `wasserstein_from_bins`: width x max(p_j, q_j) summed over bins."""
    p = _shares(np.asarray(p_counts, dtype=float))
    q = _shares(np.asarray(q_counts, dtype=float))
    width = np.diff(np.asarray(edges, dtype=float))
    return float(np.sum(width * np.maximum(p[1:-1], q[1:-1])))


@dataclass(frozen=True)
class Chi2:
    statistic: float
    pvalue: float
    dof: int


def chi2_homogeneity(p_counts: np.ndarray, q_counts: np.ndarray) -> Chi2:
    """Chi-square test that two samples share one categorical distribution (2 x k table).

    Two-sample homogeneity, not goodness of fit: the reference is a sample too. Categories
    empty in both samples are dropped; no Yates correction (as scipy for more than 1 dof).
    """
    table = np.vstack([np.asarray(p_counts, dtype=float), np.asarray(q_counts, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return Chi2(0.0, 1.0, 0)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return Chi2(stat, chi2_sf(stat, dof), dof)
