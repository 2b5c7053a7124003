"""Reading the request log and the labels: times with any UTC offset, and the fast JSON read
(features skipped) giving exactly what inferring the whole file gives, down to its fallbacks."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from mlgen.models.monitor import data
from mlgen.models.monitor.data import parse_utc, read_labels, read_predictions

D = datetime(2026, 12, 1, 8)


@pytest.mark.parametrize(("times", "want"), [
    # All with a zone: arrow's ISO 8601 cast.
    (["2026-12-01T10:00:00+02:00", "2026-12-01T08:00:00Z", "2026-12-01T08:00:00.750Z",
      "2026-12-01T03:30:00-04:30"], [D, D, D, D]),
    # Mixed with a naive time (UTC assumed) and garbage (null): the strptime path.
    (["2026-12-01T10:00:00+02:00", "2026-12-01T08:00:00", "2026-12-01T09:00:00.5+0100",
      "yesterday", "2026-12-01T08:00:00.123456Z", None], [D, D, D, None, D, None]),
])
def test_times_with_any_utc_offset_parse_to_utc(times: list[str | None],
                                                want: list[datetime | None]) -> None:
    assert parse_utc(pa.chunked_array([pa.array(times, pa.string())])).to_pylist() == want


def test_labelled_at_with_an_offset_is_read_not_nulled(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "a", "label": 1, "labelled_at": "2026-12-01T14:00:00+02:00"},
        {"id": "b", "label": 0, "labelled_at": "2026-12-01T11:00:00Z"},
        {"id": "c", "label": 0, "labelled_at": "2026-12-01T07:15:00-05:00"}]))
    labels = read_labels(path, numeric=False)
    at = dict(zip(labels.table["id"].to_pylist(), labels.table["labelled_at"].to_pylist(),
                  strict=True))
    assert at == {"a": datetime(2026, 12, 1, 12), "b": datetime(2026, 12, 1, 11),
                  "c": datetime(2026, 12, 1, 12, 15)}
    csv = tmp_path / "labels.csv"
    csv.write_text("id,label,labelled_at\na,1,2026-12-01T14:00:00+02:00\nb,0,\n")
    table = read_labels(csv, numeric=False).table
    assert table["labelled_at"].to_pylist() == [datetime(2026, 12, 1, 12), None]


def _log(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows))


def _rows(n: int, **extra: object) -> list[dict]:
    return [{"ts": f"2026-12-01T10:{i // 60 % 60:02d}:{i % 60:02d}.123Z", "model": "m",
             "id": f"r{i}", "features": {"x": i * 0.5, "s": "a" * 40}, "prediction": i % 2,
             "score": i / n, **extra} for i in range(n)]


def _inferred(path: Path, monkeypatch: pytest.MonkeyPatch) -> pa.Table:
    """What the reader gives without its fast path (inferring every column of the file)."""
    with monkeypatch.context() as m:
        m.setattr(data, "_json_fast", lambda *_: None)
        return read_predictions(path, "m")[0]


@pytest.mark.parametrize("case", ["plain", "float_later", "score_later", "string_later",
                                  "no_model", "other_model"])
def test_fast_json_read_equals_inferring_the_file(tmp_path: Path, case: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(1500)  # past the 64 KiB head the fast path samples types from
    if case == "float_later":
        rows[-1]["prediction"] = 0.5
    elif case == "score_later":
        for r in rows[:1000]:
            del r["score"]
    elif case == "string_later":
        rows[-1]["prediction"] = "yes"
    elif case == "no_model":
        for r in rows:
            del r["model"]
    elif case == "other_model":
        rows[3]["model"] = "other"
    path = tmp_path / "requests.jsonl"
    _log(path, rows)
    if case == "string_later":  # arrow cannot infer a number turning into a string either
        with pytest.raises(data.MonitorInputError, match="row 1499"):
            read_predictions(path, "m")
        with pytest.raises(data.MonitorInputError, match="row 1499"):
            _inferred(path, monkeypatch)
        return
    fast, _ = read_predictions(path, "m")
    slow = _inferred(path, monkeypatch)
    assert fast.to_pydict() == slow.to_pydict()
    # A log without `model` keeps its rows when a model is asked for (they name no other
    # model); only rows of another model are left out.
    assert fast.num_rows == {"other_model": 1499}.get(case, 1500)


@pytest.mark.parametrize("newest_times", ["zoned", "naive"])
def test_times_parsed_file_by_file_equal_parsing_the_whole_column(tmp_path: Path,
                                                                  newest_times: str) -> None:
    """ts and labelled_at are parsed per rotated file (the strings never all in memory); when
    one file needs parse_utc's slow path (a naive time) every file takes it, as parsing the
    concatenated column does, so the result is the same either way."""
    logs = tmp_path / "logs"
    logs.mkdir()
    older = _rows(40)
    newer = [dict(r, id=f"n{i}") for i, r in enumerate(_rows(30))]
    if newest_times == "naive":
        newer[5]["ts"] = "2026-12-01T10:00:05"  # no zone: UTC assumed, the strptime path
        newer[6]["ts"] = "soon"
    _log(logs / "requests.jsonl.1", older)
    _log(logs / "requests.jsonl", newer)
    got, _ = read_predictions(logs, "m")
    want = parse_utc(pa.chunked_array([pa.array([r["ts"] for r in older + newer])]))
    assert got["ts"].to_pylist() == want.to_pylist()
    assert got["id"].to_pylist() == [r["id"] for r in older + newer]
    if newest_times == "naive":
        assert got["ts"].to_pylist()[40 + 5] == datetime(2026, 12, 1, 10, 0, 5)
        assert got["ts"].to_pylist()[40 + 6] is None

    store = tmp_path / "labels"
    store.mkdir()
    (store / "a.csv").write_text("id,label,labelled_at\nr1,1,2026-12-01T14:00:00+02:00\n")
    at_b = "2026-12-01T11:00:00" if newest_times == "naive" else "2026-12-01T11:00:00Z"
    (store / "b.csv").write_text(f"id,label,labelled_at\nr2,0,{at_b}\n")
    labels = read_labels(store, numeric=False).table
    assert labels["labelled_at"].to_pylist() == [datetime(2026, 12, 1, 12),
                                                 datetime(2026, 12, 1, 11)]
