"""The real `mlgen serve` process over HTTP: V2, /predict, validation, metrics, request log."""
from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the model runtime extra (mlgen[runtime]) is not installed")
pytest.importorskip("httptools", reason="the model runtime extra (mlgen[runtime]) is not installed")

from .helpers import Server, row, start_server, v2_payload
from .modelkit import train_model

NAME = "credit-risk"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Any, Path]]:
    import joblib

    tmp = tmp_path_factory.mktemp("serve")
    model_path = train_model(tmp / "model.joblib")
    server = start_server(
        tmp,
        model_path,
        "--request-log",
        str(tmp / "reqlog"),
        "--sample-rate",
        "1",
        "--max-body-bytes",
        "4096",
        "--max-wait-ms",
        "2",
        "--metrics-dir",
        str(tmp / "metrics"),
    )
    try:
        server.wait_for("/v2/health/ready", 200)
        yield server, joblib.load(model_path), tmp
    finally:
        assert server.stop() == 0, server.log()


def _local(model: Any, rows: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]]]:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame([{k: (np.nan if v is None else v) for k, v in r.items()} for r in rows])
    return model.predict(frame).tolist(), model.predict_proba(frame).tolist()


def test_health_and_model_metadata(served: tuple[Server, Any, Path]) -> None:
    server, _, _ = served
    assert server.request("GET", "/v2/health/live").json() == {"live": True}
    assert server.request("GET", "/v2/health/ready").json() == {"ready": True}
    ready = server.request("GET", f"/v2/models/{NAME}/ready")
    assert (ready.status, ready.json()["ready"]) == (200, True)
    meta = server.request("GET", f"/v2/models/{NAME}").json()
    assert meta["name"] == NAME and meta["versions"][0].startswith("sha256:")
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
        "income": "FP64", "age": "FP64", "debt_ratio": "FP64", "credit_lines": "FP64",
        "employment_type": "BYTES", "region": "BYTES"}
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert server.request("GET", "/v2/models/other-model").status == 404
    assert server.request("POST", "/v2/health/live").status == 405


def test_v2_infer_with_a_v2_client_payload(served: tuple[Server, Any, Path]) -> None:
    server, model, _ = served
    rows = [row(), row(debt_ratio=0.95, employment_type="unemployed", region="south")]
    payload = v2_payload(rows) | {"id": "req-42"}
    resp = server.request("POST", f"/v2/models/{NAME}/infer", payload)
    assert resp.status == 200, resp.body
    body = resp.json()
    assert body["model_name"] == NAME and body["id"] == "req-42"
    out = {o["name"]: o for o in body["outputs"]}
    want_pred, want_proba = _local(model, rows)
    assert out["predict"]["data"] == want_pred
    assert out["predict"]["shape"] == [2, 1] and out["predict"]["datatype"] == "INT64"
    assert out["predict_proba"]["shape"] == [2, 2]
    assert out["predict_proba"]["data"] == pytest.approx([x for r in want_proba for x in r])
    # [N, 1] nested data (what numpy-shaped columns encode to) and a chosen output
    nested = v2_payload(rows, nested=True) | {"outputs": [{"name": "predict"}]}
    body = server.request("POST", f"/v2/models/{NAME}/infer", nested).json()
    assert [o["name"] for o in body["outputs"]] == ["predict"]
    assert body["outputs"][0]["data"] == want_pred
    versioned = server.request(
        "POST", f"/v2/models/{NAME}/versions/{body['model_version']}/infer", v2_payload(rows))
    assert versioned.status == 200


# Captured from MLServer 1.7.1's own client codec, byte for byte:
# PandasCodec.encode_request(DataFrame(two rows, income NaN in the second, object columns)).
MLSERVER_PANDAS_REQUEST = (
    '{"parameters":{"content_type":"pd"},"inputs":[{"name":"income","shape":[2,1],"datatype":"FP64",'
    '"data":[52000.0,null]},{"name":"age","shape":[2,1],"datatype":"FP64","data":[41.0,30.0]},'
    '{"name":"debt_ratio","shape":[2,1],"datatype":"FP64","data":[0.37,0.9]},{"name":"credit_lines",'
    '"shape":[2,1],"datatype":"FP64","data":[3.0,1.0]},{"name":"employment_type","shape":[2,1],'
    '"datatype":"BYTES","parameters":{"content_type":"str"},"data":["salaried","martian"]},'
    '{"name":"region","shape":[2,1],"datatype":"BYTES","parameters":{"content_type":"str"},'
    '"data":["north","south"]}]}'
)


def test_a_request_encoded_by_mlservers_pandas_codec(served: tuple[Server, Any, Path]) -> None:
    server, model, _ = served
    resp = server.request("POST", f"/v2/models/{NAME}/infer", raw=MLSERVER_PANDAS_REQUEST.encode())
    assert resp.status == 200, resp.body
    rows = [row(age=41.0), row(income=None, age=30.0, debt_ratio=0.9, credit_lines=1.0,
                                employment_type="martian", region="south")]
    want_pred, _ = _local(model, rows)
    out = {o["name"]: o for o in resp.json()["outputs"]}
    assert out["predict"]["data"] == want_pred and out["predict"]["shape"] == [2, 1]


def test_predict_records_bare_list_nan_and_unseen_category(
    served: tuple[Server, Any, Path],
) -> None:
    server, model, _ = served
    rows = [row(), row(income=None, employment_type="astronaut", region=None)]
    a = server.request("POST", "/predict", {"instances": rows})
    b = server.request("POST", "/predict", rows)
    assert a.status == b.status == 200, (a.body, b.body)
    want_pred, want_proba = _local(model, rows)
    assert a.json()["predictions"] == b.json()["predictions"] == want_pred
    got = a.json()["probabilities"]
    assert [x for r in got for x in r] == pytest.approx([x for r in want_proba for x in r])
    assert a.json()["classes"] == [0, 1]
    nan_body = b'[{"income": NaN, "age": 30, "debt_ratio": 0.2, "credit_lines": 1, ' \
               b'"employment_type": "salaried", "region": "west"}]'
    assert server.request("POST", "/predict", raw=nan_body).status == 200


def test_invalid_inputs_get_422_with_details(served: tuple[Server, Any, Path]) -> None:
    server, _, _ = served
    bad = row(income="lots", extra_field=1)
    del bad["region"]
    resp = server.request("POST", "/predict", {"instances": [row(), bad, row(region=7, age=True)]})
    assert resp.status == 422
    details = {(tuple(d["loc"]), d["type"]) for d in resp.json()["details"]}
    assert details == {
        (("instances", 1, "income"), "float_type"), (("instances", 1, "region"), "missing"),
        (("instances", 1, "extra_field"), "extra_forbidden"),
        (("instances", 2, "age"), "float_type"), (("instances", 2, "region"), "string_type"),
    }
    assert server.request("POST", "/predict", {"instances": []}).status == 422
    payload = v2_payload([row()])
    payload["inputs"][4]["datatype"] = "FP64"  # a categorical feature sent as a number
    payload["inputs"] = payload["inputs"][:5] + [{"name": "zip", "datatype": "FP64", "shape": [1],
                                                  "data": [1.0]}]
    resp = server.request("POST", f"/v2/models/{NAME}/infer", payload)
    assert resp.status == 422
    locs = {tuple(d["loc"]) for d in resp.json()["details"]}
    assert locs == {("inputs", 4, "employment_type", "datatype"), ("inputs", 5, "zip"),
                    ("inputs", "region")}


def test_malformed_json_is_400_and_oversized_body_413(served: tuple[Server, Any, Path]) -> None:
    server, _, _ = served
    resp = server.request("POST", "/predict", raw=b'{"instances": [')
    assert resp.status == 400 and "malformed JSON" in resp.json()["error"]
    big = json.dumps({"instances": [row()] * 100}).encode()
    assert len(big) > 4096
    resp = server.request("POST", "/predict", raw=big)
    assert resp.status == 413 and resp.headers.get("connection") == "close"
    # the server is fine afterwards
    assert server.request("POST", "/predict", [row()]).status == 200


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if (
            line.startswith(name + " ")
            or line.startswith(name + "{")
            and line.split(" ")[0] == name
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_sum_over_workers(served: tuple[Server, Any, Path]) -> None:
    server, _, tmp = served
    before = server.request("GET", "/metrics").body.decode()
    key = 'mlgen_http_requests_total{route="/predict",status="200"}'
    rows_key = "mlgen_predicted_rows_total"
    for i in range(12):  # separate connections: the two workers share them
        assert server.request("POST", "/predict", [row(age=20 + i)] * 2).status == 200
    resp = server.request("GET", "/metrics")
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = resp.body.decode()
    assert _metric(after, key) - _metric(before, key) == 12
    assert _metric(after, rows_key) - _metric(before, rows_key) == 24
    assert f'mlgen_model_info{{name="{NAME}",version="sha256:' in after
    assert "mlgen_workers_ready 2" in after
    for name in ("mlgen_http_request_duration_seconds_bucket", "mlgen_batch_size_bucket",
                 "mlgen_prediction_score_bucket", 'mlgen_predictions_total{class="0"}'):
        assert name in after
    assert sorted(p.name for p in (tmp / "metrics").glob("worker-*.bin")) == \
        ["worker-0.bin", "worker-1.bin"]


def test_request_log_has_the_contract_format(served: tuple[Server, Any, Path]) -> None:
    server, _, tmp = served
    assert server.request("POST", "/predict", [row(age=77, income=None)]).status == 200
    path = tmp / "reqlog" / "requests.jsonl"
    deadline = time.monotonic() + 10
    found = None
    while found is None and time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        found = next((json.loads(ln) for ln in lines if '"age":77' in ln), None)
        time.sleep(0.2)
    assert found is not None, "the sampled row never reached the request log"
    assert set(found) == {"ts", "model", "id", "features", "prediction", "score"}
    assert 0.0 <= found["score"] <= 1.0
    assert found["model"] == NAME and found["ts"].endswith("Z")
    assert found["features"]["income"] is None and found["features"]["region"] == "north"
    assert found["prediction"] in (0, 1)


def test_bad_http_gets_400_and_keeps_serving(served: tuple[Server, Any, Path]) -> None:
    server, _, _ = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    assert server.request("GET", "/v2/health/live").status == 200


def test_pipelined_requests_are_answered_in_order(served: tuple[Server, Any, Path]) -> None:
    server, _, _ = served
    slow = json.dumps([row()] * 20).encode()
    raw = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
           b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") % (len(slow), slow)
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"200", b"200", b"404"]
    assert data.index(b'"predictions"') < data.index(b'{"live":true}')
