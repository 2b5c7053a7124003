"""Issue 4's "done when": a fresh `mlgen init` project trains, passes its gate, and serves V2 and
/predict from `mlgen serve -C project` (options from its mlgen.yaml), as the image runs it."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the model runtime extra (mlgen[runtime]) is not installed")
pytest.importorskip("httptools", reason="the model runtime extra (mlgen[runtime]) is not installed")

from mlgen.cli import main

from tests.helpers import MLGEN_SCRIPT, run_mlgen

from .helpers import REPO, Server, free_port

MLGEN = MLGEN_SCRIPT


def _mlgen(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mlgen("-C", str(root), *args, script=True)


@pytest.mark.parametrize("task,name", [("classification", "credit-risk"),
                                       ("regression", "house-prices")])
def test_init_train_gate_serve(tmp_path: Path, task: str, name: str) -> None:
    import yaml

    root = tmp_path / name
    assert main(["init", str(root), "--name", name, "--task", task, "--non-interactive"]) == 0
    for step in (("run", "data", "--rows", "1500"), ("run", "train"), ("gate",)):
        done = _mlgen(root, *step)
        assert done.returncode == 0, (step, done.stdout, done.stderr)
    features = yaml.safe_load((root / "mlgen.yaml").read_text())["model"]["features"]
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(MLGEN), "-C", str(root), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--request-log", str(tmp_path / "requests"), "--sample-rate", "1"],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LOG_LEVEL": "info"})
    server = Server(proc, port, log_path)
    try:
        server.wait_for("/v2/health/ready", 200)
        import pandas as pd

        frame = pd.read_csv(root / "data" / "train.csv").head(2)
        records = []
        for _, r in frame.iterrows():
            rec = {f: (None if pd.isna(r[f]) else float(r[f])) for f in features["numeric"]}
            rec |= {f: (None if pd.isna(r[f]) else str(r[f])) for f in features["categorical"]}
            records.append(rec)
        records[1][features["categorical"][0]] = "never-seen"
        predicted = server.request("POST", "/predict", {"instances": records})
        assert predicted.status == 200, predicted.body
        assert len(predicted.json()["predictions"]) == 2
        inputs = [{"name": f, "datatype": "FP64", "shape": [2], "data": [r[f] for r in records]}
                  for f in features["numeric"]]
        inputs += [
            {
                "name": f,
                "datatype": "BYTES",
                "shape": [2],
                "parameters": {"content_type": "str"},
                "data": [r[f] for r in records],
            }
            for f in features["categorical"]
        ]
        infer = server.request("POST", f"/v2/models/{name}/infer",
                               {"parameters": {"content_type": "pd"}, "inputs": inputs})
        assert infer.status == 200, infer.body
        outputs = {o["name"]: o for o in infer.json()["outputs"]}
        assert outputs["predict"]["data"] == predicted.json()["predictions"]
        assert ("predict_proba" in outputs) == (task == "classification")
        metrics = server.request("GET", "/metrics").body.decode()
        assert f'mlgen_model_info{{name="{name}"' in metrics and f'task="{task}"' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        deadline = time.monotonic() + 5
        while not (tmp_path / "requests" / "requests.jsonl").exists():
            assert time.monotonic() < deadline, "SIGTERM did not flush the request log"
            time.sleep(0.1)
    finally:
        server.stop()
