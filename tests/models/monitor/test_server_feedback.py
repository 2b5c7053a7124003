"""The real server: request ids round trip (header, body, request log) and the feedback
endpoint stores labels that `mlgen monitor` then joins; bad input is a 4xx naming the row."""
from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the model runtime extra (mlgen[runtime]) is not installed")
pytest.importorskip("httptools", reason="the model runtime extra (mlgen[runtime]) is not installed")

from tests.models.serving.helpers import Server, row, start_server, v2_payload
from tests.models.serving.modelkit import train_model


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    tmp = tmp_path_factory.mktemp("serve-feedback")
    model_path = train_model(tmp / "model.joblib")
    server = start_server(tmp, model_path, "--request-log", str(tmp / "reqlog"),
                          "--sample-rate", "1", "--max-wait-ms", "2", workers=1)
    try:
        server.wait_for("/v2/health/ready", 200)
        yield server, tmp
    finally:
        assert server.stop() == 0, server.log()


def post(server: Server, path: str, body: Any, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())
    finally:
        conn.close()


def logged(tmp: Path, ids: set[str]) -> dict[str, dict[str, Any]]:
    path = tmp / "reqlog" / "requests.jsonl"
    deadline = time.monotonic() + 15
    found: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and set(found) != ids:
        for line in path.read_text().splitlines() if path.exists() else []:
            doc = json.loads(line)
            if doc.get("id") in ids:
                found[doc["id"]] = doc
        time.sleep(0.2)
    return found


def test_request_id_round_trip(served: tuple[Server, Path]) -> None:
    server, tmp = served
    status, headers, body = post(server, "/predict", [row()], {"X-Request-ID": "loan-2026.1"})
    assert status == 200 and headers["x-request-id"] == "loan-2026.1"
    assert body["id"] == "loan-2026.1"
    # An unsafe id (a space and a quote) is replaced, never echoed.
    status, headers, body = post(server, "/predict", [row(), row(age=30)],
                                 {"X-Request-ID": 'bad id"'})
    generated = headers["x-request-id"]
    assert status == 200 and generated != 'bad id"' and len(generated) == 32
    assert body["ids"] == [f"{generated}-0", f"{generated}-1"]
    status, headers, body = post(server, "/v2/models/credit-risk/infer",
                                 {**v2_payload([row()]), "id": "v2-req"})
    assert status == 200 and body["id"] == "v2-req" and headers["x-request-id"] == "v2-req"
    found = logged(tmp, {"loan-2026.1", f"{generated}-1", "v2-req"})
    assert set(found) == {"loan-2026.1", f"{generated}-1", "v2-req"}
    assert found[f"{generated}-1"]["features"]["age"] == 30


def test_feedback_endpoint_stores_and_counts(served: tuple[Server, Path]) -> None:
    server, tmp = served
    post(server, "/predict", [row()], {"X-Request-ID": "fb-1"})
    logged(tmp, {"fb-1"})
    status, _, body = post(server, "/v2/models/credit-risk/feedback",
                           [{"id": "fb-1", "label": 1}, {"id": "fb-1", "label": 0},
                            {"id": "never-seen", "label": 1}])
    assert status == 200
    assert body == {"received": 3, "accepted": 3, "duplicates": 1, "unknown_at_this_time": 1}
    lines = [json.loads(x) for x in (tmp / "reqlog" / "labels.jsonl").read_text().splitlines()]
    assert [(x["id"], x["label"]) for x in lines[-3:]] == [("fb-1", 1), ("fb-1", 0),
                                                          ("never-seen", 1)]
    assert all(x["labelled_at"].endswith("Z") for x in lines)


def test_feedback_bad_input_is_4xx_naming_the_row(served: tuple[Server, Path]) -> None:
    server, _ = served
    path = "/v2/models/credit-risk/feedback"
    status, _, body = post(server, path, [{"id": "a", "label": 1}, {"id": "b"}])
    assert status == 422 and body["error"].startswith("row 1 (id 'b'): 'label'")
    status, _, body = post(server, path, [{"id": "ok", "label": 1}, {"id": "x y", "label": 1}])
    assert status == 422 and body["error"].startswith("row 1: 'id'")
    status, _, body = post(server, path, {"labels": "nope"})
    assert status == 422 and "JSON list" in body["error"]
    status, _, _ = post(server, "/v2/models/other/feedback", [])
    assert status == 404
