"""Streaming: every reader hands over chunks of about `chunk_rows` rows, whatever the file's own
layout (one huge Parquet row group, a CSV or request log read in small blocks), and the chunk
size never changes the verdict. Peak memory itself is measured by benchmarks/drift_bench.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from mlgen.models.drift.accumulate import CategoricalAccumulator, category_counts
from mlgen.models.drift.detect import DriftSettings
from mlgen.models.drift.readers import ReadLog, read_chunks
from mlgen.models.drift.run import run_drift
from mlgen.models.profile import write_profile

from tests.models.drift.helpers import frame, names, write_request_log

ROWS = 12_345
CHUNK = 1_000


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("stream")
    ref = frame(np.random.default_rng(5), 5_000, numeric=6, categorical=2)
    numeric, categorical = names(ref)
    write_profile(ref, folder / "profile.json", numeric=numeric, categorical=categorical)
    cur = frame(np.random.default_rng(6), ROWS, numeric=6, categorical=2, shifted=("num01", "cat1"))
    cur.loc[::20, "num02"] = np.nan  # 5% missing: reported, below the 0.1 missing-rate threshold
    cur.loc[::25, "cat0"] = None
    cur.to_parquet(folder / "w.parquet", row_group_size=ROWS)  # one row group, larger than a chunk
    cur.to_csv(folder / "w.csv", index=False)
    # Missing values as JSON null, as the server writes them (json.dumps would write NaN).
    write_request_log(cur.astype(object).where(cur.notna(), None), folder / "logs")
    return {"profile": folder / "profile.json", "parquet": folder / "w.parquet",
            "csv": folder / "w.csv", "jsonl": folder / "logs", "frame": folder}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_chunks_are_bounded_by_chunk_rows(files: dict[str, Path], fmt: str) -> None:
    kinds = {**{f"num{i:02d}": "numeric" for i in range(6)}, "cat0": "categorical",
             "cat1": "categorical"}
    log = ReadLog()
    sizes = [n for _, n in read_chunks(files[fmt], kinds, chunk_rows=CHUNK, since=None, log=log)]
    assert sum(sizes) == ROWS and log.rows_in_window == ROWS and not log.problems
    # Parquet: record batches of the chunk size, not the 12,345-row group; CSV and JSON lines:
    # 1 MB blocks (~7,000 of these rows) cut and regrouped into chunks of exactly that size.
    assert sizes == [CHUNK] * (ROWS // CHUNK) + [ROWS % CHUNK]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_chunk_size_never_changes_the_report(files: dict[str, Path], fmt: str) -> None:
    whole = run_drift(files["profile"], files[fmt], DriftSettings(chunk_rows=10_000_000))
    small = run_drift(files["profile"], files[fmt], DriftSettings(chunk_rows=CHUNK))
    assert whole.current["chunks"] == 1 and small.current["chunks"] > 5
    assert sorted(f.name for f in small.drifted) == ["cat1", "num01"]
    for a, b in zip(whole.features, small.features, strict=True):
        assert (a.status, a.drifted, a.rows, a.count, a.missing, a.unseen) == \
            (b.status, b.drifted, b.rows, b.count, b.missing, b.unseen)
        assert a.scores == pytest.approx(b.scores, rel=1e-9)  # only the summation order differs


def test_parquet_categories_stay_dictionary_encoded_and_count_right(files: dict[str, Path]) -> None:
    import pandas as pd

    log = ReadLog()
    chunks = [c for c, _ in read_chunks(files["parquet"], {"cat0": "categorical"}, chunk_rows=CHUNK,
                                        since=None, log=log)]
    assert all(pa.types.is_dictionary(c["cat0"].type) for c in chunks)
    expected = pd.read_parquet(files["parquet"], columns=["cat0"])["cat0"].value_counts()
    total: dict[str, int] = {}
    for c in chunks:
        for value, count in category_counts(c["cat0"]):
            total[value] = total.get(value, 0) + count
    assert total == expected.to_dict()


def test_category_counts_handle_sliced_and_null_dictionary_arrays() -> None:
    arr = pa.array(["a", "b", None, "a", "c", None, "a"]).dictionary_encode().slice(1, 5)
    assert sorted(category_counts(arr)) == [("a", 1), ("b", 1), ("c", 1)]
    from mlgen.models.profile import CategoricalProfile

    acc = CategoricalAccumulator(CategoricalProfile("x", 3, 0, {"a": 2, "b": 1}, 0))
    acc.add(pa.chunked_array([arr, pa.array(["b", "b"]).dictionary_encode()]), 7)
    assert acc.counts == {"a": 1, "b": 3, "c": 1} and acc.missing == 2


def test_numeric_values_of_sliced_arrays_with_nulls() -> None:
    from mlgen.models.drift.accumulate import numeric_values

    arr = pa.array([1.0, None, 3.0, 4.0, None, 6.0, 7.0, 8.0, 9.0, None]).slice(3, 6)
    values, invalid = numeric_values(arr)
    assert invalid == 0
    np.testing.assert_array_equal(values, [4.0, np.nan, 6.0, 7.0, 8.0, 9.0])
    values, _ = numeric_values(pa.chunked_array([arr.slice(0, 2), pa.array([5.0, None])]))
    np.testing.assert_array_equal(values, [4.0, np.nan, 5.0, np.nan])
    values, _ = numeric_values(pa.array([5, None, 7], pa.int32()))  # cast, then the same path
    np.testing.assert_array_equal(values, [5.0, np.nan, 7.0])


def test_csv_read_in_pieces_or_compressed_gives_the_same_report(
        files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The CSV reader parses pieces of whole lines (16 MB); pieces of 64 KB (about 20 here)
    and the streaming reader used for .csv.gz must give exactly the report of one piece."""
    import gzip

    from mlgen.models.drift import csvfiles

    one = run_drift(files["profile"], files["csv"], DriftSettings(chunk_rows=CHUNK))
    gz = files["frame"] / "w.csv.gz"
    gz.write_bytes(gzip.compress(files["csv"].read_bytes()))
    monkeypatch.setattr(csvfiles, "CSV_PIECE", 64 << 10)
    log = ReadLog()
    pieces = list(csvfiles._csv_pieces(files["csv"], {"num00": "numeric"}, log))
    assert len(pieces) > 10 and sum(len(p["num00"]) for p in pieces) == ROWS
    for other in (run_drift(files["profile"], files["csv"], DriftSettings(chunk_rows=CHUNK)),
                  run_drift(files["profile"], gz, DriftSettings(chunk_rows=CHUNK))):
        assert other.current["rows"] == ROWS and not other.problems
        for a, b in zip(one.features, other.features, strict=True):
            assert (a.status, a.drifted, a.rows, a.count, a.missing, a.unseen) == \
                (b.status, b.drifted, b.rows, b.count, b.missing, b.unseen)
            assert a.scores == pytest.approx(b.scores, rel=1e-9)
