"""Start-up without a usable model (exit 2), hot reload that keeps a good model, SIGTERM
draining."""

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


@pytest.mark.parametrize("content", [None, b"this is not a pickle"], ids=["missing", "corrupt"])
def test_a_missing_or_corrupt_model_at_start_up_exits_2_naming_the_file(
        tmp_path: Path, content: bytes | None) -> None:
    """It used to log "ready to accept connections" and answer 503 forever: a pod that never
    became ready but never crashed either. Now it exits 2 before listening, in one line."""
    target = tmp_path / "artifacts" / "model.joblib"
    if content is not None:
        target.parent.mkdir()
        target.write_bytes(content)
    server = start_server(tmp_path, target, workers=2)
    try:
        code = server.proc.wait(60)  # sklearn's import dominates: seconds, not "never"
    finally:
        server.stop()
    log = server.log()
    assert code == 2, log
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(target) in errors[0], log
    assert ("does not exist" if content is None else "is corrupt") in errors[0]
    assert "ready to accept connections" not in log and "listening on" not in log
    assert "Traceback" not in log


def test_a_changed_model_is_picked_up_and_a_broken_one_keeps_the_old(tmp_path: Path) -> None:
    target = train_model(tmp_path / "artifacts" / "model.joblib")
    server = start_server(tmp_path, target, workers=1)
    try:
        server.wait_for("/v2/health/ready", 200)
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
        assert "is corrupt" in server.log()
        assert server.request("GET", "/v2/models/credit-risk").json()["versions"] == second
        assert server.request("GET", "/v2/health/ready").status == 200
        target.unlink()  # gone while serving: still the model in memory, no crash
        time.sleep(1.0)
        assert server.request("POST", "/predict", [row()]).status == 200
        assert server.proc.poll() is None
        shutil.copy(train_model(tmp_path / "third.joblib", seed=2), target)  # back: picked up
        deadline = time.monotonic() + 30
        while server.request("GET", "/v2/models/credit-risk").json()["versions"] == second:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
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
