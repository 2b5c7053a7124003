"""The two tail probabilities the drift tests need, without importing scipy.

`import scipy.stats` costs about 1 s of a drift run's 2 s budget (it pulls in sparse, linalg,
optimize and spatial) and `scipy.special` alone 0.15-0.3 s, for two functions. So they are computed
here with numpy and `math`, following the same algorithms
scipy uses, and the tests check them against scipy to 1e-9 relative:

- `kstwo_sf(d, n)`: P(D_n >= d) for the two-sided one-sample Kolmogorov-Smirnov statistic, which
  is what `scipy.stats.ks_2samp(method="asymp")` evaluates at n = round(n1 n2 / (n1 + n2)). The
  choice of method per region is Simard and L'Ecuyer's (2011), as in scipy's `_ksstats.py`
  (BSD-3): Ruben-Gambino closed forms at the extremes, 2 x the exact one-sided Smirnov tail
  (Birnbaum-Tingey sum) where n d^2 >= 2.2, the Durbin matrix (Marsaglia-Tsang-Wang) for small
  n d^1.5, and the Pelz-Good expansion otherwise. Where scipy uses Pomeranz's recursion
  (n <= 140) we use the Durbin matrix, which is exact there too.
- `chi2_sf(x, dof)`: the regularised upper incomplete gamma Q(dof/2, x/2), by its series or its
  Lentz continued fraction (Numerical Recipes' gammq), ~1e-14 relative.
"""
from __future__ import annotations

import math

import numpy as np

_E128 = 128
_EP128 = math.ldexp(1.0, _E128)
_PI2, _PI4, _PI6 = math.pi ** 2, math.pi ** 4, math.pi ** 6
_SQRT2PI = math.sqrt(2 * math.pi)
# Bernoulli B_{2j} / (2j (2j-1)), j = 8..1: Stirling's series for log(n!) (as scipy's).
_STIRLING = (-2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3,
             8.4175084175084175084e-4, -5.952380952380952381e-4, 7.9365079365079365079e-4,
             -2.7777777777777777778e-3, 8.3333333333333333333e-2)


def _log_nfact_over_npow(n: int) -> float:
    """log(n! / n^n), without the cancellation of lgamma(n + 1) - n log n for large n."""
    if n < 50:
        return math.lgamma(n + 1) - n * math.log(n)
    rn = 1.0 / n
    series = 0.0
    for c in _STIRLING:
        series = series * (rn * rn) + c
    return math.log(n) / 2 - n + math.log(2 * math.pi) / 2 + rn * series


_LOG_FACT_SMALL = np.array([math.lgamma(i + 1.0) for i in range(16)])
_EXACT_TERMS = 20_000  # Birnbaum-Tingey terms summed one by one; beyond, a strided sum


def _log_factorial(x: np.ndarray) -> np.ndarray:
    """log(x!) for whole numbers x >= 0: a table below 16, Stirling's series above (~5e-16)."""
    out = np.empty_like(x)
    small = x < 16
    out[small] = _LOG_FACT_SMALL[x[small].astype(np.int64)]
    y = x[~small]
    r = 1.0 / y
    r2 = r * r
    out[~small] = (y * np.log(y) - y + 0.5 * np.log(2 * math.pi * y)
                   + r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 / 1680))))
    return out


def smirnov_sf(n: int, d: float) -> float:
    """P(D_n^+ >= d), the one-sided tail: Birnbaum and Tingey's sum, every term positive.

    With more than 20,000 terms (n of 100k to millions, where a full sum costs ~0.1-0.6 s) every
    s-th term is summed and multiplied by s. The terms are a smooth bump hundreds of thousands
    of terms wide that vanishes at both ends, so this Riemann sum agrees with the full one to
    1e-8 relative (checked against scipy from n = 100,001 to 1,000,000) at 1/s of the cost.
    """
    if d >= 1.0:
        return 0.0
    if d <= 0.0:
        return 1.0
    last = math.floor(n * (1.0 - d))
    stride = max(1, last // _EXACT_TERMS) if last > _EXACT_TERMS else 1
    j = np.arange(0, last + 1, stride, dtype=np.float64)
    log_comb = _log_factorial(np.array([float(n)]))[0] - _log_factorial(j) - _log_factorial(n - j)
    with np.errstate(divide="ignore"):
        logs = (log_comb + (n - j) * np.log1p(-d - j / n) + (j - 1) * np.log(d + j / n))
    top = float(np.max(logs))
    return float(min(1.0, d * math.exp(top) * float(np.sum(np.exp(logs - top))) * stride))


def _durbin_cdf(n: int, d: float) -> float:
    """P(D_n < d) exactly: the Durbin matrix, raised to the n-th power by squaring, rescaled."""
    nd = n * d
    k = math.ceil(nd)
    h = k - nd
    m = 2 * k - 1
    powers = np.arange(1, m + 1, dtype=np.float64)
    fact = np.cumprod(np.concatenate(([1.0], 1.0 / powers)))  # 1/0!, 1/1!, ..., 1/m!
    v = (1.0 - h ** powers) * fact[1:]
    v[-1] = (1.0 + max(2 * h - 1.0, 0.0) ** m - 2 * h ** m) * fact[m]
    hmat = np.zeros((m, m))
    for i in range(1, m):
        hmat[i - 1:, i] = fact[:m - i + 1]
    hmat[:, 0] = v
    hmat[-1, :] = v[::-1]
    result = np.eye(m)
    expnt = hexpnt = 0
    left = n
    while left > 0:
        if left % 2:
            result = result @ hmat
            expnt += hexpnt
        hmat = hmat @ hmat
        hexpnt *= 2
        if abs(hmat[k - 1, k - 1]) > _EP128:
            hmat /= _EP128
            hexpnt += _E128
        left //= 2
    p = float(result[k - 1, k - 1])
    if p <= 0.0:
        return 0.0
    return math.exp(math.log(p) + expnt * math.log(2.0) + _log_nfact_over_npow(n))


def _pelz_good_cdf(n: int, x: float) -> float:
    """P(D_n <= x) by Pelz and Good's (1976) expansion in 1/sqrt(n), for small z = x sqrt(n)."""
    z = math.sqrt(n) * x
    z2, z3, z4, z6 = z * z, z ** 3, z ** 4, z ** 6
    qlog = -_PI2 / 8 / z2
    if qlog < -708:
        return 0.0
    q = math.exp(qlog)
    k1a, k1b = -z2, _PI2 / 4
    k2a, k2b, k2c = 6 * z6 + 2 * z4, (2 * z4 - 5 * z2) * _PI2 / 4, _PI4 * (1 - 2 * z2) / 16
    k3d = _PI6 * (5 - 30 * z2) / 64
    k3c = _PI4 * (-60 * z2 + 212 * z4) / 16
    k3b = _PI2 * (135 * z4 - 96 * z6) / 4
    k3a = -30 * z6 - 90 * z ** 8
    terms = np.zeros(4)
    maxk = math.ceil(16 * z / math.pi)
    for k in range(maxk, 0, -1):  # Horner over q^(8k), odd m = 2k - 1
        m = 2 * k - 1
        m2, m4, m6 = m * m, m ** 4, m ** 6
        terms *= q ** (8 * k)
        terms += np.array([1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4,
                           k3a + k3b * m2 + k3c * m4 + k3d * m6])
    terms *= q * _SQRT2PI
    terms /= np.array([z, 6 * z4, 72 * z ** 7, 6480 * z ** 10])
    q = math.exp(-_PI2 / 2 / z2)
    ks = np.arange(maxk, 0, -1, dtype=np.float64)
    qk = q ** (ks * ks)
    terms[2] += float(np.sum(ks * ks * qk)) * _PI2 * _SQRT2PI / (-36 * z3)
    sqrt3z = math.sqrt(3) * z
    terms[3] += (float(np.sum((sqrt3z + math.pi * ks) * (sqrt3z - math.pi * ks) * ks * ks * qk))
                 * _PI2 * _SQRT2PI / (216 * z6))
    terms /= np.power(float(n), np.arange(4) / 2.0)
    return float(np.sum(terms))


def kstwo_sf(d: float, n: int) -> float:
    """P(D_n >= d), two-sided one-sample KS statistic of n observations (scipy's kstwo.sf)."""
    if n <= 0 or math.isnan(d):
        return math.nan
    if d >= 1.0:
        return 0.0
    if d <= 0.0:
        return 1.0
    t = n * d
    if t <= 1.0:  # Ruben-Gambino: 1/(2n) <= d <= 1/n
        if t <= 0.5:
            return 1.0
        return _clip(1.0 - math.exp(_log_nfact_over_npow(n) + n * math.log(2 * t - 1)))
    if t >= n - 1:  # Ruben-Gambino
        return _clip(2 * (1.0 - d) ** n)
    if d >= 0.5:
        return _clip(2 * smirnov_sf(n, d))
    nd2 = t * d
    if n <= 140:
        if nd2 < 4:
            return _clip(1.0 - _durbin_cdf(n, d))
        return _clip(2 * smirnov_sf(n, d))
    if nd2 >= 370.0:
        return 0.0
    if nd2 >= 2.2:
        return _clip(2 * smirnov_sf(n, d))
    if n <= 100_000 and n * d ** 1.5 <= 1.4:
        return _clip(1.0 - _durbin_cdf(n, d))
    return _clip(1.0 - _pelz_good_cdf(n, d))


def _clip(p: float) -> float:
    return min(1.0, max(0.0, p))


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for a chi-square variable with `dof` degrees of freedom."""
    if dof <= 0 or math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 1.0
    a, y = dof / 2.0, x / 2.0
    log_front = a * math.log(y) - y - math.lgamma(a)
    if y < a + 1.0:  # series for the lower tail P; Q = 1 - P is not small here
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= y / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return _clip(1.0 - total * math.exp(log_front))
    # Lentz's continued fraction for the upper tail Q directly: no cancellation when Q is tiny.
    tiny = 1e-300
    b = y + 1.0 - a
    c = 1.0 / tiny
    dd = 1.0 / b
    h = dd
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        dd = an * dd + b
        dd = tiny if abs(dd) < tiny else dd
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        dd = 1.0 / dd
        delta = dd * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return _clip(math.exp(log_front) * h)
