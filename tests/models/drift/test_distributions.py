"""Our KS and chi-square tail probabilities against scipy's, in every region of their algorithms;
and a drift run that imports neither scipy nor pandas (they cost a second of a 2 s budget)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlgen.models.drift.distributions import chi2_sf, kstwo_sf, smirnov_sf
from scipy.special import smirnov
from scipy.stats import chi2, kstwo

from tests.models.drift.helpers import frame, names

SIZES = [1, 2, 5, 10, 37, 100, 140, 141, 500, 1200, 5000, 20_000, 99_999, 100_000, 100_001]


def _grid(n: int) -> list[float]:
    rng = np.random.default_rng(n)
    # Uniform d covers the closed forms and the Smirnov tail; d ~ 1/sqrt(n) the Durbin matrix and
    # Pelz-Good regions, where p-values near the usual 0.05 threshold live.
    few = n > 10_000  # scipy takes tens of ms a point there
    ds = [*rng.uniform(0.0, 1.0, 6 if few else 25),
          *(np.linspace(0.2, 3.0, 12 if few else 40) / math.sqrt(n)),
          0.5 / n + 1e-9, 1.0 / n, 0.5, 0.99]
    return [float(d) for d in ds if 0.0 < d <= 1.0]


@pytest.mark.parametrize("n", SIZES)
def test_kstwo_sf_matches_scipy(n: int) -> None:
    for d in _grid(n):
        ref = float(kstwo.sf(d, n))
        got = kstwo_sf(d, n)
        if ref > 1e-250:
            assert got == pytest.approx(ref, rel=1e-7), (n, d)
        else:
            assert got <= 1e-240, (n, d)


def test_kstwo_sf_matches_scipy_on_a_large_window() -> None:
    # scipy needs ~1 s a point here (its full Birnbaum-Tingey sum), so a few points: one
    # Pelz-Good, two on the strided sum (p near 1e-3 and 1e-21).
    n = 400_000
    for z in (1.0, 2.0, 5.0):
        d = z / math.sqrt(n)
        assert kstwo_sf(d, n) == pytest.approx(float(kstwo.sf(d, n)), rel=1e-7), (n, d)


@pytest.mark.parametrize("n", [1, 3, 50, 1000, 60_000])
def test_smirnov_sf_matches_scipy(n: int) -> None:
    for d in np.linspace(0.001, 0.999, 37):
        ref = float(smirnov(n, d))
        if ref > 1e-250:
            assert smirnov_sf(n, float(d)) == pytest.approx(ref, rel=1e-8), (n, d)


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 9, 50, 999])
def test_chi2_sf_matches_scipy(dof: int) -> None:
    for x in [1e-8, 0.01, *np.linspace(0.5, 6 * dof + 30, 40)]:
        ref = float(chi2.sf(x, dof))
        if ref > 1e-290:
            assert chi2_sf(float(x), dof) == pytest.approx(ref, rel=1e-11), (dof, x)
    assert chi2_sf(0.0, dof) == 1.0 and math.isnan(chi2_sf(1.0, 0))


def test_drift_run_imports_neither_scipy_nor_pandas(tmp_path: Path) -> None:
    from mlgen.models.profile import write_profile

    ref = frame(np.random.default_rng(1), 2_000, numeric=3, categorical=2)
    numeric, categorical = names(ref)
    write_profile(ref, tmp_path / "p.json", numeric=numeric, categorical=categorical)
    cur = frame(np.random.default_rng(2), 2_000, numeric=3, categorical=2, shifted=("num01",))
    cur.to_parquet(tmp_path / "w.parquet")
    cur.to_csv(tmp_path / "w.csv", index=False)
    cur.to_json(tmp_path / "w.jsonl", orient="records", lines=True)
    for window in ("w.parquet", "w.csv", "w.jsonl"):
        code = (
            "import json, sys\n"
            "from mlgen.cli import main\n"
            f"rc = main(['drift', '--reference', 'p.json', '--current', {window!r}, "
            "'--numeric-method', 'ks', '--categorical-method', 'chi2', '--json', '-o', 'out'])\n"
            "heavy = sorted(m for m in ('pandas', 'scipy', 'pydantic') if m in sys.modules)\n"
            "print(json.dumps({'rc': rc, 'heavy': heavy}), file=sys.stderr)\n"
        )
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, check=False)
        result = json.loads(done.stderr.strip().splitlines()[-1])
        assert result == {"rc": 0, "heavy": []}, (window, done.stderr)
        report = json.loads((tmp_path / "out" / "drift-report.json").read_text())
        assert [f["name"] for f in report["features"] if f["drifted"]] == ["num01"]  # by KS p
