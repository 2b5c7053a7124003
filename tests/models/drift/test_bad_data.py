"""Bad data: the report says what happened; exit 2 only when nothing could be computed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlgen.models.drift.detect import DriftSettings
from mlgen.models.drift.run import run_drift
from mlgen.models.profile import write_profile

from tests.models.drift.helpers import frame, names, write_request_log


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ref = frame(np.random.default_rng(5), 5_000, numeric=3, categorical=2)
    numeric, categorical = names(ref)
    path = tmp_path_factory.mktemp("ref") / "profile.json"
    write_profile(ref, path, numeric=numeric, categorical=categorical)
    return path


def kinds(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.kind for p in report.problems}


def by_name(report, name: str):  # type: ignore[no-untyped-def]
    return next(f for f in report.features if f.name == name)


def test_empty_window_is_an_error(reference: Path, tmp_path: Path) -> None:
    (tmp_path / "requests.jsonl").write_text("")
    report = run_drift(reference, tmp_path, DriftSettings())
    assert report.exit_code == 2 and "empty_window" in kinds(report)


def test_missing_input_is_an_error(reference: Path, tmp_path: Path) -> None:
    report = run_drift(reference, tmp_path / "nope.parquet", DriftSettings())
    assert report.exit_code == 2 and "missing_input" in kinds(report)


def test_unreadable_profile_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"schema": "something/v9"}))
    report = run_drift(tmp_path / "p.json", tmp_path, DriftSettings())
    assert report.exit_code == 2 and "bad_profile" in kinds(report)
    assert "mlgen.profile/v1" in (report.error or "")


def test_missing_and_extra_columns_are_reported_and_the_rest_evaluated(reference: Path,
                                                                        tmp_path: Path) -> None:
    cur = frame(np.random.default_rng(1), 2_000, numeric=3, categorical=2)
    cur = cur.drop(columns=["num01"]).assign(surprise=1.0)
    cur.to_csv(tmp_path / "w.csv", index=False)
    report = run_drift(reference, tmp_path / "w.csv", DriftSettings())
    assert by_name(report, "num01").status == "missing_column"
    assert {"missing_column", "extra_column"} <= kinds(report)
    assert len(report.evaluated) == 4 and report.exit_code == 0


def test_all_missing_column_drifts_on_missing_rate(reference: Path, tmp_path: Path) -> None:
    cur = frame(np.random.default_rng(2), 2_000, numeric=3, categorical=2)
    cur["num02"] = np.nan
    cur.to_parquet(tmp_path / "w.parquet")
    report = run_drift(reference, tmp_path / "w.parquet", DriftSettings())
    f = by_name(report, "num02")
    assert f.status == "all_missing" and f.drifted and f.missing["current"] == 1.0
    assert "all_missing" in kinds(report)


def test_wrong_types_in_csv_count_as_invalid(reference: Path, tmp_path: Path) -> None:
    cur = frame(np.random.default_rng(3), 3_000, numeric=3, categorical=2).astype({"num00": object})
    cur.loc[2_500:, "num00"] = "n/a-ish"  # late in the file: after the typed reader started
    cur.to_csv(tmp_path / "w.csv", index=False)
    report = run_drift(reference, tmp_path / "w.csv", DriftSettings())
    f = by_name(report, "num00")
    assert "wrong_types" in kinds(report)
    assert f.rows == 3_000 and f.count == 2_500
    assert any("not numbers" in n for n in f.notes)


def test_wrong_types_and_bad_rows_in_one_piece_of_a_csv(reference: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Read in pieces, only the piece holding the bad values is read as text; a row with too
    many fields is skipped and counted, wherever it falls."""
    from mlgen.models.drift import csvfiles

    monkeypatch.setattr(csvfiles, "CSV_PIECE", 16 << 10)
    cur = frame(np.random.default_rng(3), 3_000, numeric=3, categorical=2).astype({"num00": object})
    cur.loc[2_900:, "num00"] = "n/a-ish"
    text = cur.to_csv(index=False)
    lines = text.splitlines(keepends=True)
    lines.insert(1_500, "1,2,3,4,5,6,7,8,9\n")  # too many fields
    (tmp_path / "w.csv").write_text("".join(lines))
    report = run_drift(reference, tmp_path / "w.csv", DriftSettings())
    f = by_name(report, "num00")
    assert {"wrong_types", "bad_lines"} <= kinds(report)
    assert f.rows == 3_000 and f.count == 2_900
    assert [p.count for p in report.problems if p.kind == "bad_lines"] == [1]
    assert by_name(report, "num01").count == 3_000  # other pieces stayed typed and complete


def test_wrong_types_and_bad_lines_in_the_request_log(reference: Path, tmp_path: Path) -> None:
    cur = frame(np.random.default_rng(4), 1_000, numeric=3, categorical=2)
    log = write_request_log(cur, tmp_path)
    with log.open("a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps({"ts": "2030-01-01T00:00:00Z", "features": {
            "num00": "abc", "num01": 1.0, "num02": 2.0, "cat0": 7, "cat1": "retail"}}) + "\n")
    report = run_drift(reference, tmp_path, DriftSettings())
    assert {"wrong_types", "bad_lines"} <= kinds(report)
    assert report.current["rows"] == 1_001
    assert by_name(report, "num00").count == 1_000
    assert report.exit_code == 0


def test_a_corrupt_parquet_file_is_skipped_and_the_others_read(
    reference: Path, tmp_path: Path
) -> None:
    frame(np.random.default_rng(6), 1_000, numeric=3, categorical=2).to_parquet(
        tmp_path / "a.parquet"
    )
    (tmp_path / "b.parquet").write_bytes(b"PAR1 this is not really parquet")
    report = run_drift(reference, tmp_path, DriftSettings())
    assert "corrupt_file" in kinds(report)
    assert report.current["rows"] == 1_000 and report.exit_code == 0


def test_only_corrupt_files_is_an_error(reference: Path, tmp_path: Path) -> None:
    (tmp_path / "b.parquet").write_bytes(b"garbage")
    report = run_drift(reference, tmp_path, DriftSettings())
    assert report.exit_code == 2 and {"corrupt_file", "empty_window"} <= kinds(report)


def test_unseen_categories_are_reported(reference: Path, tmp_path: Path) -> None:
    cur = frame(np.random.default_rng(7), 2_000, numeric=3, categorical=2)
    cur.loc[:599, "cat1"] = "brand-new"
    cur.to_parquet(tmp_path / "w.parquet")
    f = by_name(run_drift(reference, tmp_path / "w.parquet", DriftSettings()), "cat1")
    assert f.unseen is not None and f.unseen["examples"] == ["brand-new"]
    assert f.unseen["share"] == pytest.approx(0.3)
    assert f.drifted


def test_too_few_rows_are_not_judged_and_not_drift(reference: Path, tmp_path: Path) -> None:
    # Shifted hard, but 20 rows say nothing: the job reports it and exits 0 (a quiet night is
    # neither drift nor a failed run).
    cur = frame(np.random.default_rng(8), 20, numeric=3, categorical=2,
                shifted=("num00", "num01", "num02", "cat0", "cat1"), shift=3.0)
    cur["cat1"] = None  # all missing: not judged either
    cur.to_parquet(tmp_path / "w.parquet")
    report = run_drift(reference, tmp_path / "w.parquet", DriftSettings())
    assert {f.status for f in report.features} == {"insufficient_data"}
    assert not any(f.drifted for f in report.features)
    assert report.too_few_rows and not report.dataset_drift and report.exit_code == 0
    assert "too_few_rows" in kinds(report)
    from mlgen.models.drift.report import to_markdown

    assert "too few rows: 20 in the window (< drift.min_rows 100)" in to_markdown(report)
    big_enough = run_drift(reference, tmp_path / "w.parquet", DriftSettings(min_rows=10))
    assert big_enough.exit_code == 1 and not big_enough.too_few_rows
