"""`mlgen promote` against two real model servers: the decision comes from their /metrics."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import EXAMPLES, run_mlgen
from tests.models.serving.helpers import Server, row, start_server
from tests.models.serving.modelkit import train_model

REQUESTS = 120  # above the thresholds' min_requests (100 by default)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, Path]]:
    tmp = tmp_path_factory.mktemp("promote")
    model = train_model(tmp / "model.joblib", rows=400)
    project = tmp / "credit-risk"
    shutil.copytree(EXAMPLES / "credit-risk", project)
    champion = start_server(tmp, model, workers=1)
    challenger = start_server(tmp, model, workers=1)
    try:
        for server in (champion, challenger):
            server.wait_for("/v2/health/ready", 200)
        yield champion, challenger, project
    finally:
        for server in (champion, challenger):
            assert server.stop() == 0, server.log()


def _send(server: Server, incomes: np.ndarray) -> None:
    for income in incomes:
        answer = server.request("POST", "/predict", [row(income=float(income))])
        assert answer.status == 200, answer.body


def _promote(project: Path, champion: Server, challenger: Server) -> tuple[int, dict[str, object]]:
    done = run_mlgen("-C", str(project), "promote", "prod", "--json",
                     "--champion", f"http://127.0.0.1:{champion.port}/metrics",
                     "--challenger", f"http://127.0.0.1:{challenger.port}/metrics")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_equal_servers_promote_then_shifted_predictions_roll_back(
        servers: tuple[Server, Server, Path]) -> None:
    champion, challenger, project = servers
    incomes = np.random.default_rng(1).lognormal(10, 0.5, REQUESTS)
    _send(champion, incomes)
    _send(challenger, incomes)
    code, doc = _promote(project, champion, challenger)
    assert code == 0 and doc["decision"] == "promote", doc
    assert all(step for step in doc["plan"])  # a promote plan is printed, not applied
    assert doc["applied"] is False

    # The challenger now sees (and answers) a very different population: its prediction
    # distribution moves away from the champion's, beyond max_prediction_psi (0.1).
    _send(challenger, np.full(4 * REQUESTS, 5_000.0))
    code, doc = _promote(project, champion, challenger)
    assert code == 1 and doc["decision"] == "rollback", doc
    failed = [c["metric"] for c in doc["checks"] if not c["ok"]]  # type: ignore[union-attr]
    assert failed == ["prediction_psi"], doc
    assert "prediction_psi" in str(doc["reason"])


def test_too_few_requests_is_unusable_input(tmp_path: Path,
                                            servers: tuple[Server, Server, Path]) -> None:
    _, _, project = servers
    fresh = start_server(tmp_path, train_model(tmp_path / "m.joblib", rows=300), workers=1)
    try:
        fresh.wait_for("/v2/health/ready", 200)
        done = run_mlgen("-C", str(project), "promote", "prod",
                         "--champion", f"http://127.0.0.1:{fresh.port}/metrics",
                         "--challenger", f"http://127.0.0.1:{fresh.port}/metrics")
        assert done.returncode == 2, done.stderr
        assert "min_requests" in done.stderr
    finally:
        assert fresh.stop() == 0, fresh.log()
