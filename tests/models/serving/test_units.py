"""The server's parts on their own: validation, micro-batching, shared metrics, request log, CLI."""
from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from mlgen.models.serving.config import RequestLogConfig
from mlgen.models.serving.schema import InputError, parse_records, parse_v2

NUM = ("income", "age")
CAT = ("region",)


def _locs(exc: pytest.ExceptionInfo[InputError]) -> set[tuple[Any, ...]]:
    return {tuple(d["loc"]) for d in exc.value.details}


def test_records_accept_null_nan_and_ints_and_refuse_bools_infinity_strings() -> None:
    cols = parse_records({"instances": [{"income": 1, "age": None, "region": None},
                                        {"income": math.nan, "age": 2.5, "region": "x"}]}, NUM, CAT)
    assert cols.rows == 2 and cols.data["income"][0] == 1.0 and math.isnan(cols.data["age"][0])
    assert cols.data["region"] == [None, "x"]
    with pytest.raises(InputError) as exc:
        parse_records([{"income": True, "age": math.inf, "region": 3}, "row"], NUM, CAT)
    assert exc.value.status == 422
    assert _locs(exc) == {
        ("body", 0, "income"),
        ("body", 0, "age"),
        ("body", 0, "region"),
        ("body", 1),
    }
    with pytest.raises(InputError) as exc:
        parse_records({"instances": [], "extra": 1}, NUM, CAT)
    assert _locs(exc) == {("extra",)}


def _tensor(
    name: str, datatype: str, data: list[Any], shape: list[int] | None = None
) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def test_v2_checks_shapes_rows_duplicates_codec_and_outputs() -> None:
    ok = {
        "inputs": [
            _tensor("income", "INT64", [1, 2]),
            _tensor("age", "FP32", [[3.0], [4.0]], [2, 1]),
            _tensor("region", "BYTES", ["a", None]),
        ],
        "outputs": [{"name": "predict_proba"}],
    }
    req = parse_v2(ok, NUM, CAT, classifier=True)
    assert req.columns.rows == 2 and req.columns.data["age"] == [3.0, 4.0]
    assert req.outputs == ("predict_proba",)
    bad = {"parameters": {"content_type": "np"},
           "inputs": [_tensor("income", "FP64", [1.0, 2.0], [3]), _tensor("age", "FP64", [1.0]),
                      _tensor("age", "FP64", [1.0]), _tensor("region", "BYTES", ["a", "b"])],
           "outputs": [{"name": "predict_proba"}]}
    with pytest.raises(InputError) as exc:
        parse_v2(bad, NUM, CAT, classifier=False)  # a regressor has no predict_proba
    assert _locs(exc) == {("parameters", "content_type"), ("inputs", 0, "income", "shape"),
                          ("inputs", 2, "age"), ("inputs", 3, "region", "shape"), ("outputs", 0)}


def test_micro_batcher_merges_concurrent_requests_and_respects_the_cap() -> None:
    from mlgen.models.serving.batcher import MicroBatcher

    calls: list[int] = []

    async def scenario(cap: int, n: int, fail: bool = False) -> list[Any]:
        loop = asyncio.get_running_loop()

        def compute(cols: dict[str, list[Any]], rows: int) -> list[Any]:
            if fail:
                raise ValueError("boom")
            calls.append(rows)
            return cols["x"]

        def finish(
            cols: dict[str, list[Any]], rows: int, sizes: list[int], out: list[Any]
        ) -> list[Any]:
            res, start = [], 0
            for size in sizes:
                res.append(out[start:start + size])
                start += size
            return res

        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(loop, compute, finish, cap, 0.002, lambda: 0, pool)
            futures = [loop.create_future() for _ in range(n)]
            for i, fut in enumerate(futures):  # all in the same loop iteration
                batcher.submit({"x": [i]}, 1, lambda r, e, f=fut: f.set_result(e or r))
            return await asyncio.gather(*futures)

    assert asyncio.run(scenario(cap=32, n=5)) == [[0], [1], [2], [3], [4]]
    assert calls == [5]
    calls.clear()
    assert asyncio.run(scenario(cap=2, n=5)) == [[0], [1], [2], [3], [4]]
    assert calls == [2, 2, 1]
    errors = asyncio.run(scenario(cap=32, n=3, fail=True))
    assert all(isinstance(e, ValueError) for e in errors)


def test_metrics_are_summed_over_worker_files_and_survive_a_restart(tmp_path: Path) -> None:
    from mlgen.models.serving import metrics as prom

    a, b = prom.WorkerMetrics(tmp_path, 0), prom.WorkerMetrics(tmp_path, 1)
    a.request("/predict", 200, 0.003)
    b.request("/predict", 200, 0.2)
    b.request("/predict", 422, 0.001)
    a.batch(3)
    a.predictions([0, 1, 1], [0.1, 0.9, 0.8], None)
    a.close()
    a = prom.WorkerMetrics(tmp_path, 0)  # the supervisor restarted worker 0
    a.request("/predict", 200, 0.004)
    text = prom.render(tmp_path, "m", "sha256:abc", "classification", ["no", "yes"], 2)
    assert 'mlgen_http_requests_total{route="/predict",status="200"} 3' in text
    assert 'mlgen_http_requests_total{route="/predict",status="422"} 1' in text
    assert 'mlgen_http_request_duration_seconds_bucket{route="/predict",le="0.005"} 3' in text
    assert 'mlgen_http_request_duration_seconds_count{route="/predict"} 4' in text
    assert 'mlgen_predictions_total{class="yes"} 2' in text
    assert 'mlgen_prediction_score_bucket{le="0.5"} 1' in text
    assert 'mlgen_model_info{name="m",version="sha256:abc",task="classification"} 1' in text
    assert "mlgen_batch_size_sum 3.0" in text
    a.close()
    b.close()


def test_request_log_rotates_and_stays_bounded_with_two_writers(tmp_path: Path) -> None:
    from mlgen.models.serving.reqlog import RequestLogger

    config = RequestLogConfig(tmp_path, sample_rate=1.0, max_bytes=4096, backups=2)
    writers = [RequestLogger(config, "m"), RequestLogger(config, "m")]  # two worker processes
    for i in range(60):
        w = writers[i % 2]
        w.sample({"income": [float(i), math.nan], "region": ["r", None]}, 2, [i, i])
        w.flush()
    for w in writers:
        w.close()
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert names == ["requests.jsonl", "requests.jsonl.1", "requests.jsonl.2"]
    lines = []
    for name in names:
        assert (tmp_path / name).stat().st_size <= 4096
        lines += [json.loads(ln) for ln in (tmp_path / name).read_text().splitlines()]
    assert lines and all(set(r) == {"ts", "model", "features", "prediction"} for r in lines)
    assert {r["features"]["income"] for r in lines if r["features"]["region"] is None} == {None}
    assert max(r["prediction"] for r in lines) == 59  # the newest rows are kept


def test_serve_options_come_from_the_spec_and_flags_win(tmp_path: Path) -> None:
    from mlgen.commands.serve import build_config

    (tmp_path / "mlgen.yaml").write_text(
        "apiVersion: mlgen/v1\nname: credit-risk\nmodel:\n  task: classification\n"
        "  artifact: artifacts/m.joblib\n  features:\n    numeric: [income, age]\n"
        "    categorical: [region]\nserve:\n  port: 9000\n  workers: 3\n  max_batch_size: 16\n"
        "  request_log: {path: /var/log/x, sample_rate: 0.5}\n")
    opts: dict[str, Any] = {"model_path": None, "name": None, "numeric": (), "categorical": (),
                            "task": None, "host": "0.0.0.0", "port": None, "workers": 1,
                            "max_batch_size": None, "max_wait_ms": None, "max_body_bytes": 2048,
                            "request_log": None, "sample_rate": None, "log_max_bytes": None,
                            "log_backups": None, "poll_interval": 1.0, "graceful_timeout": 5.0,
                            "metrics_dir": None}
    config = build_config(tmp_path, opts)
    assert config.model_path == tmp_path / "artifacts/m.joblib" and config.name == "credit-risk"
    assert (config.numeric, config.categorical) == (("income", "age"), ("region",))
    assert (config.port, config.workers, config.max_batch_size) == (9000, 1, 16)
    assert config.request_log is not None and config.request_log.sample_rate == 0.5
    assert str(config.request_log.path) == "/var/log/x"


def test_serve_without_spec_needs_model_and_does_not_import_the_runtime(tmp_path: Path) -> None:
    code = ("import sys\nfrom mlgen.cli import main\n"
            f"rc = main(['-C', {str(tmp_path)!r}, 'serve', '--numeric', 'a'])\n"
            "assert rc == 2, rc\n"
            "rc = main(['serve', '--help'])\n"
            "heavy = {'numpy', 'sklearn', 'pandas', 'uvloop', 'httptools'} & set(sys.modules)\n"
            "assert not heavy, heavy\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr
    assert "give --model PATH" in out.stderr


def test_a_busier_worker_steps_back_from_accepting_but_not_forever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlgen.models.serving import accept
    from mlgen.models.serving import metrics as prom

    idle, busy = (
        prom.WorkerMetrics(tmp_path, 0, workers=2),
        prom.WorkerMetrics(tmp_path, 1, workers=2),
    )
    idle.set(prom.LAYOUT.connections, 2)
    open_here = [3]
    acceptor = accept.BalancedAcceptor(None, None, None, lambda: open_here[0], busy, 2)  # type: ignore[arg-type]
    now = [100.0]
    monkeypatch.setattr(accept.time, "monotonic", lambda: now[0])
    assert acceptor._step_back()  # 3 here, 2 there: let the sibling take it
    now[0] += accept.MAX_DEFER_S + 0.001
    assert not acceptor._step_back()  # nobody did: accept anyway
    acceptor._deferred_since = None
    open_here[0] = 2
    assert not acceptor._step_back()  # even: accept
    idle.close()  # a stopped sibling does not count
    open_here[0] = 9
    assert not acceptor._step_back()
    busy.close()
