"""Shadow mirroring between two real `mlgen serve` processes: the champion answers, then copies
each prediction request to the shadow (x-mlgen-shadow: 1), which logs its answer apart and
never mirrors it again; a dead or hung shadow changes nothing in the champion's answers."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="the model runtime extra (mlgen[runtime]) is not installed")
pytest.importorskip("httptools", reason="the model runtime extra (mlgen[runtime]) is not installed")

from mlgen.models.contract import SHADOW_HEADER, infer_path
from mlgen.promote import parse

from .helpers import Server, free_port, row, start_server, v2_payload
from .modelkit import train_model

NAME = "credit-risk"
DEADLINE_S = 60.0  # how long the counters may take to catch up on a busy machine


def metric(server: Server, name: str, **labels: str) -> float:
    text = server.request("GET", "/metrics").body.decode()
    return sum(s.value for s in parse(text)
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def eventually(what: Callable[[], bool], describe: Callable[[], str]) -> None:
    """Wait for a condition the servers reach asynchronously (not a timing assertion: the
    deadline only bounds a hang)."""
    deadline = time.monotonic() + DEADLINE_S
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(describe())
        time.sleep(0.1)


def _log_rows(folder: Path) -> list[dict[str, Any]]:
    path = folder / "requests.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, Path]]:
    tmp = tmp_path_factory.mktemp("shadow")
    model = train_model(tmp / "model.joblib", rows=300)
    # The shadow's own --shadow-url is itself: were a mirrored request mirrored again, it
    # would loop; the header stops that, which is what the counters below show.
    shadow_port = free_port()
    shadow = start_server(tmp, model, "--request-log", str(tmp / "shadow-log"),
                          "--sample-rate", "1", "--shadow-url",
                          f"http://127.0.0.1:{shadow_port}", workers=1, port=shadow_port)
    champion = start_server(tmp, model, "--request-log", str(tmp / "champion-log"),
                            "--sample-rate", "1", "--shadow-url",
                            f"http://127.0.0.1:{shadow_port}", workers=2)
    try:
        for server in (shadow, champion):
            server.wait_for("/v2/health/ready", 200)
        yield champion, shadow, tmp
    finally:
        for server in (champion, shadow):
            assert server.stop() == 0, server.log()


def test_champion_mirrors_answered_requests_to_the_shadow(pair: tuple[Server, Server, Path]
                                                          ) -> None:
    champion, shadow, tmp = pair
    ids = []
    for i in range(20):
        answer = champion.request("POST", "/predict", [row(age=20 + i), row(age=60 + i)])
        assert answer.status == 200, answer.body
        ids.append(answer.json()["id"])
    answer = champion.request("POST", infer_path(NAME), v2_payload([row(), row(age=30)]))
    assert answer.status == 200, answer.body
    ids.append(answer.json()["id"])

    def counts() -> str:
        return (f"sent {metric(champion, 'mlgen_shadow_requests_total', outcome='sent')}, "
                f"failed {metric(champion, 'mlgen_shadow_requests_total', outcome='failed')}"
                f"\n{champion.log()}\n{shadow.log()}")

    eventually(lambda: metric(champion, "mlgen_shadow_requests_total", outcome="sent") == 21,
               counts)
    assert metric(champion, "mlgen_shadow_requests_total", outcome="failed") == 0
    assert metric(champion, "mlgen_shadow_requests_total", outcome="dropped") == 0
    # The same model on both sides: every row compared, none disagreeing.
    assert metric(champion, "mlgen_shadow_compared_rows_total") == 42
    assert metric(champion, "mlgen_shadow_disagreeing_rows_total") == 0
    # The shadow answered each copy once, on the route the client used (the unversioned
    # infer route for V2), and mirrored none of them again.
    assert metric(shadow, "mlgen_http_requests_total", route="/predict", status="200") == 20
    assert metric(shadow, "mlgen_http_requests_total", route=infer_path("{name}"),
                  status="200") == 1
    assert metric(shadow, "mlgen_shadow_requests_total") == 0

    # The shadow's answers are logged apart, marked, under the champion's request ids.
    eventually(lambda: len(_log_rows(tmp / "shadow-log" / "shadow")) == 42,
               lambda: str(_log_rows(tmp / "shadow-log" / "shadow")))
    shadow_rows = _log_rows(tmp / "shadow-log" / "shadow")
    assert all(r["shadow"] is True for r in shadow_rows)
    assert {r["id"].rsplit("-", 1)[0] for r in shadow_rows} == set(ids)
    assert _log_rows(tmp / "shadow-log") == []  # drift reads this one: no copies in it
    eventually(lambda: len(_log_rows(tmp / "champion-log")) == 42,
               lambda: str(_log_rows(tmp / "champion-log")))
    assert not any("shadow" in r for r in _log_rows(tmp / "champion-log"))
    assert not (tmp / "champion-log" / "shadow").exists()  # made by the first mirrored request


def test_a_marked_request_is_never_mirrored(pair: tuple[Server, Server, Path]) -> None:
    _, shadow, _ = pair
    before = metric(shadow, "mlgen_http_requests_total", route="/predict", status="200")
    for marked in (True, False):
        conn_headers = {SHADOW_HEADER: "1"} if marked else {}
        answer = _post(shadow.port, "/predict", [row()], conn_headers)
        assert answer[0] == 200, answer
    # The unmarked request is mirrored once, to the shadow itself; that copy carries the
    # header and stops there: three answers, one mirror.
    eventually(lambda: metric(shadow, "mlgen_http_requests_total", route="/predict",
                              status="200") == before + 3,
               lambda: shadow.log())
    eventually(lambda: metric(shadow, "mlgen_shadow_requests_total", outcome="sent") == 1,
               lambda: shadow.log())
    time_for_a_loop = time.monotonic() + 1.0  # a looping mirror would have gone on by now
    while time.monotonic() < time_for_a_loop:
        time.sleep(0.1)
    assert metric(shadow, "mlgen_shadow_requests_total", outcome="sent") == 1
    assert metric(shadow, "mlgen_http_requests_total", route="/predict",
                  status="200") == before + 3


def _post(port: int, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


class _Hung:
    """A TCP listener that accepts connections and never answers: a stuck shadow."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)

    def close(self) -> None:
        self._stop = True
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("shadow_state", ["down", "hung"])
def test_champion_answers_the_same_whatever_the_shadow_does(tmp_path: Path,
                                                            shadow_state: str) -> None:
    import http.client

    import joblib
    import pandas as pd

    model_path = train_model(tmp_path / "model.joblib", rows=300)
    hung = _Hung() if shadow_state == "hung" else None
    port = hung.port if hung is not None else free_port()  # nothing listens on a free port
    champion = start_server(tmp_path, model_path, "--shadow-url", f"http://127.0.0.1:{port}",
                            workers=1)

    def outcome(name: str) -> float:
        return metric(champion, "mlgen_shadow_requests_total", outcome=name)

    try:
        champion.wait_for("/v2/health/ready", 200)
        model = joblib.load(model_path)
        rows = [row(age=18 + i % 60, income=30_000.0 + 97 * i) for i in range(100)]
        expected = model.predict(pd.DataFrame(rows)).tolist()
        client = http.client.HTTPConnection("127.0.0.1", champion.port, timeout=30)
        sent = 0
        # Down: every copy fails at once. Hung: each copy waits out the send deadline, so
        # the mirror queue fills up and drops copies; keep sending until it has.
        while sent < 300 or (hung is not None and not outcome("dropped") and sent < 20_000):
            for one, want in zip(rows, expected):
                client.request("POST", "/predict", body=json.dumps([one]).encode(),
                               headers={"Content-Type": "application/json"})
                answer = client.getresponse()
                body = answer.read()
                assert answer.status == 200, body
                assert json.loads(body)["predictions"] == [want]
            sent += len(rows)
        client.close()
        if hung is None:
            eventually(lambda: outcome("failed") == sent, lambda: champion.log())
            assert outcome("sent") == outcome("dropped") == 0
        else:
            assert outcome("dropped") > 0
            eventually(lambda: outcome("failed") > 0, lambda: champion.log())
            assert outcome("sent") == 0
        assert metric(champion, "mlgen_http_requests_total", route="/predict",
                      status="200") == sent
    finally:
        assert champion.stop() == 0, champion.log()
        if hung is not None:
            hung.close()


def test_a_replaced_shadow_loses_no_copy(tmp_path: Path) -> None:
    """The champion keeps connections to the shadow alive; a shadow that went away and came
    back (a rollout, its idle timeout) has closed them, and the next copies go over new ones."""
    model = train_model(tmp_path / "model.joblib", rows=300)
    port = free_port()
    shadow = start_server(tmp_path, model, workers=1, port=port)
    champion = start_server(tmp_path, model, "--shadow-url", f"http://127.0.0.1:{port}",
                            workers=1)

    def outcome(name: str) -> float:
        return metric(champion, "mlgen_shadow_requests_total", outcome=name)

    try:
        for server in (shadow, champion):
            server.wait_for("/v2/health/ready", 200)
        for expected in (8, 16):
            for _ in range(8):
                assert champion.request("POST", "/predict", [row()]).status == 200
            eventually(lambda n=expected: outcome("sent") + outcome("failed") == n,
                       lambda: champion.log())
            assert outcome("failed") == 0, champion.log()
            if expected == 8:  # replace the shadow: same address, the old connections gone
                assert shadow.stop() == 0, shadow.log()
                shadow = start_server(tmp_path, model, workers=1, port=port)
                shadow.wait_for("/v2/health/ready", 200)
        assert metric(shadow, "mlgen_http_requests_total", route="/predict", status="200") == 8
    finally:
        for server in (champion, shadow):
            assert server.stop() == 0, server.log()


@pytest.mark.parametrize(("classifier", "ours", "theirs", "disagree", "spread"), [
    (True, [0, 1, 1, 0], [0, 0, 1, 1], 2, 0.0),
    (False, [100.0, 200.0, 10.0], [104.0, 230.0, 10.0], 1, 34.0),  # 4% agrees, 15% does not
])
def test_disagreement_counts_rows_predicted_differently(
        tmp_path: Path, classifier: bool, ours: list[Any], theirs: list[Any], disagree: int,
        spread: float) -> None:
    import asyncio

    from mlgen.models.serving import metrics as prom
    from mlgen.models.serving.config import ServeConfig
    from mlgen.models.serving.shadow import Copy, Shadow

    loop = asyncio.new_event_loop()
    metrics = prom.WorkerMetrics(tmp_path, 0)
    try:
        shadow = Shadow(ServeConfig(Path("m"), NAME, ("a",), (), shadow_url="http://s:1"),
                        loop, metrics, None)
        answer = json.dumps({"predictions": theirs}).encode()
        shadow._compare(Copy("/predict", b"{}", "r", ours, classifier), answer)
        shadow._compare(Copy("/predict", b"{}", "r", ours, classifier), b"not json")
        totals = prom.read_totals(tmp_path)
        assert totals[prom.LAYOUT.shadow_compared_rows] == len(ours)
        assert totals[prom.LAYOUT.shadow_disagreeing_rows] == disagree
        assert totals[prom.LAYOUT.shadow_abs_difference] == spread
    finally:
        metrics.close()
        loop.close()


@pytest.mark.parametrize("url", ["https://shadow:8080", "shadow:8080", "http://:8080",
                                 "http://shadow:99999"])
def test_a_shadow_url_the_mirror_cannot_use_is_refused(url: str) -> None:
    from mlgen.models.serving.config import ServeConfig

    problems = ServeConfig(Path("m"), NAME, ("a",), (), shadow_url=url).problems()
    assert any(p.startswith("--shadow-url: ") for p in problems), problems


def test_the_champion_takes_the_shadow_url_from_its_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the rendered champion Deployment sets (MLGEN_SHADOW_URL in its container env)
    reaches the server's settings without a flag."""
    from mlgen.commands.serve import build_config, command
    from mlgen.models.contract import SHADOW_URL_ENV

    monkeypatch.setenv(SHADOW_URL_ENV, "http://credit-risk-shadow:8080")
    args = ["--model", str(tmp_path / "m.joblib"), "--name", NAME, "--numeric", "a"]
    ctx = command.make_context("serve", list(args))  # click consumes the list
    assert build_config(tmp_path, ctx.params).shadow_url == "http://credit-risk-shadow:8080"
    monkeypatch.setenv(SHADOW_URL_ENV, "")  # set but empty: no mirroring
    ctx = command.make_context("serve", list(args))  # click consumes the list
    assert build_config(tmp_path, ctx.params).shadow_url is None
