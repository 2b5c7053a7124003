"""Start the real `mlgen serve` process on a free port and talk to it over HTTP."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import REPO as REPO_ROOT

from .modelkit import CATEGORICAL, NUMERIC

REPO = REPO_ROOT
START_TIMEOUT = 90.0  # importing sklearn on a busy 2-core machine can take a while


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                timeout: float = 30.0) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = (
                raw
                if raw is not None
                else (json.dumps(body).encode() if body is not None else None)
            )
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return Response(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, path: str, status: int, timeout: float = START_TIMEOUT) -> Response:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                resp = self.request("GET", path, timeout=5)
                if resp.status == status:
                    return resp
                last = resp.status
            except OSError as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"{path} never answered {status} (last: {last}):\n{self.log()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(tmp: Path, model: Path, *extra: str, workers: int = 2, name: str = "credit-risk",
                 features: bool = True, port: int | None = None) -> Server:
    port = port or free_port()
    log_path = tmp / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "mlgen", "serve", "--model", str(model), "--name", name,
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--poll-interval", "0.2", *extra]
    if features:
        cmd += ["--numeric", ",".join(NUMERIC), "--categorical", ",".join(CATEGORICAL)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "LOG_LEVEL": "info"}
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return Server(proc, port, log_path)


def row(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"income": 52000.0, "age": 41, "debt_ratio": 0.37, "credit_lines": 3,
                            "employment_type": "salaried", "region": "north"}
    base.update(over)
    return base


def v2_payload(rows: list[dict[str, Any]], nested: bool = False) -> dict[str, Any]:
    """What an MLServer client sends for a DataFrame (PandasCodec.encode_request): one input per
    column, numeric FP64, strings BYTES with content_type str, request content_type pd."""
    n = len(rows)
    inputs = []
    for name in NUMERIC:
        data = [r[name] for r in rows]
        inputs.append({"name": name, "datatype": "FP64", "shape": [n, 1] if nested else [n],
                       "data": [[v] for v in data] if nested else data})
    for name in CATEGORICAL:
        data = [r[name] for r in rows]
        inputs.append({"name": name, "datatype": "BYTES", "shape": [n, 1] if nested else [n],
                       "parameters": {"content_type": "str"},
                       "data": [[v] for v in data] if nested else data})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}
