"""Planted drift is found exactly; same-distribution windows raise no alarm over many seeds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlgen.models.drift.detect import DriftSettings
from mlgen.models.drift.run import run_drift
from mlgen.models.profile import write_profile

from tests.models.drift.helpers import frame, names

PLANTED = ("num03", "num11", "num20")
SEEDS = 20


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ref = frame(np.random.default_rng(1000), 20_000)
    numeric, categorical = names(ref)
    path = tmp_path_factory.mktemp("ref") / "profile.json"
    write_profile(ref, path, numeric=numeric, categorical=categorical, model="demo")
    return path


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_planted_drift_in_3_of_30_is_flagged_exactly(
    reference: Path, tmp_path: Path, fmt: str
) -> None:
    cur = frame(np.random.default_rng(7), 20_000, shifted=PLANTED)
    path = tmp_path / f"window.{fmt}"
    if fmt == "parquet":
        cur.to_parquet(path)
    elif fmt == "csv":
        cur.to_csv(path, index=False)
    else:
        cur.to_json(path, orient="records", lines=True)
    report = run_drift(reference, path, DriftSettings())
    assert sorted(f.name for f in report.drifted) == sorted(PLANTED)
    assert len(report.evaluated) == 30
    assert not report.dataset_drift and report.exit_code == 0  # 10% < the 50% share


def test_planted_categorical_drift_is_flagged(reference: Path, tmp_path: Path) -> None:
    cur = frame(np.random.default_rng(8), 10_000, shifted=("cat2",))
    cur.to_parquet(tmp_path / "w.parquet")
    report = run_drift(reference, tmp_path / "w.parquet", DriftSettings())
    assert [f.name for f in report.drifted] == ["cat2"]


def test_same_distribution_flags_nothing_over_many_seeds(
    reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    false_alarms = 0
    checked = 0
    for seed in range(SEEDS):
        cur = frame(np.random.default_rng(seed), 5_000)
        cur.to_parquet(tmp_path / "w.parquet")
        report = run_drift(reference, tmp_path / "w.parquet", DriftSettings())
        checked += len(report.evaluated)
        false_alarms += len(report.drifted)
    with capsys.disabled():
        print(f"\nfalse-positive rate (auto methods, 5,000-row windows, {SEEDS} seeds): "
              f"{false_alarms}/{checked} feature checks = {false_alarms / checked:.2%}")
    assert false_alarms == 0


def test_ks_pvalue_over_alarms_on_large_windows_where_auto_does_not(reference: Path,
                                                                     tmp_path: Path) -> None:
    """Why auto is an effect size: a tiny, harmless shift is 'significant' at 200k rows."""
    cur = frame(np.random.default_rng(3), 200_000, shifted=("num05",), shift=0.03)
    cur.to_parquet(tmp_path / "w.parquet")
    auto = run_drift(reference, tmp_path / "w.parquet", DriftSettings())
    ks = run_drift(reference, tmp_path / "w.parquet",
                   DriftSettings(numeric_method="ks", categorical_method="chi2"))
    assert auto.drifted == ()
    assert "num05" in {f.name for f in ks.drifted}


def test_chunk_size_does_not_change_the_result(reference: Path, tmp_path: Path) -> None:
    cur = frame(np.random.default_rng(9), 12_345, shifted=PLANTED)
    cur.to_parquet(tmp_path / "w.parquet", row_group_size=1000)
    big = run_drift(reference, tmp_path / "w.parquet", DriftSettings(chunk_rows=1_000_000))
    small = run_drift(reference, tmp_path / "w.parquet", DriftSettings(chunk_rows=777))
    assert small.current["chunks"] > 10
    for a, b in zip(big.features, small.features, strict=True):
        assert a.scores["psi"] == pytest.approx(b.scores["psi"], rel=1e-9)
        if a.kind == "numeric":
            assert a.scores["wasserstein"] == pytest.approx(b.scores["wasserstein"], rel=1e-9)
        assert a.drifted == b.drifted
