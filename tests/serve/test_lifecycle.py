"""Readiness without a model (and with a corrupt one), then SIGTERM draining an in-flight request."""
from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the model runtime extra (mlgen[runtime]) is not installed")
pytest.importorskip("httptools", reason="the model runtime extra (mlgen[runtime]) is not installed")

from .helpers import Response, row, start_server
from .modelkit import train_model


def test_not_ready_while_model_missing_or_corrupt_then_picked_up(tmp_path: Path) -> None:
    trained = train_model(tmp_path / "trained.joblib")
    target = tmp_path / "artifacts" / "model.joblib"
    server = start_server(tmp_path, target, workers=1)
    try:
        server.wait_for("/v2/health/live", 200)
        ready = server.request("GET", "/v2/health/ready")
        assert ready.status == 503 and "does not exist" in ready.json()["reason"]
        assert server.request("POST", "/predict", [row()]).status == 503
        target.parent.mkdir()
        target.write_bytes(b"this is not a pickle")
        deadline = time.monotonic() + 30
        while "corrupt" not in server.request("GET", "/v2/health/ready").body.decode():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        assert server.proc.poll() is None  # no crash loop
        shutil.copy(trained, target)
        server.wait_for("/v2/health/ready", 200, timeout=30)
        assert server.request("POST", "/predict", [row()]).status == 200
        first = server.request("GET", "/v2/models/credit-risk").json()["versions"]
        # a retrained artifact swapped in atomically is picked up; a broken one is not
        train_model(tmp_path / "retrained.joblib", seed=1).replace(target)
        deadline = time.monotonic() + 30
        while server.request("GET", "/v2/models/credit-risk").json()["versions"] == first:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        second = server.request("GET", "/v2/models/credit-risk").json()["versions"]
        target.write_bytes(b"truncated")
        deadline = time.monotonic() + 30
        while "still serving the previous model" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        assert server.request("GET", "/v2/models/credit-risk").json()["versions"] == second
        assert server.request("GET", "/v2/health/ready").status == 200
        log = server.log()
        assert "does not exist yet; readiness stays false" in log and "is corrupt" in log
    finally:
        assert server.stop() == 0


def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    import joblib

    from .slowmodel import SlowModel

    inner = joblib.load(train_model(tmp_path / "inner.joblib"))
    marker = tmp_path / "predicting"
    joblib.dump(SlowModel(inner, str(marker), delay=2.0), tmp_path / "slow.joblib")
    server = start_server(tmp_path, tmp_path / "slow.joblib", "--task", "classification", workers=1)
    try:
        server.wait_for("/v2/health/ready", 200)
        result: list[Response] = []
        slow = threading.Thread(target=lambda: result.append(
            server.request("POST", "/predict", [row(age=999)])))
        slow.start()
        deadline = time.monotonic() + 30
        while not marker.exists():  # the request is inside the model call now
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        slow.join(30)
        assert result and result[0].status == 200, server.log()
        assert result[0].headers.get("connection") == "close"
        assert server.proc.wait(30) == 0
        assert "draining 1 in-flight request(s)" in server.log()
    finally:
        server.stop()
