"""`mlgen serve` beside MLServer (scikit-learn runtime) on the same model, in the same run.

    .venv/bin/python benchmarks/serve_bench.py [--concurrency 1,8,32] [--duration 10]
                                               [--repeats 3] [--soak 60] [--target 32]

Model: a credit-like ColumnTransformer (impute+scale numeric, impute+one-hot categorical)
+ LogisticRegression pipeline, trained here on numpy-made data and saved once with joblib;
both servers load that same file. Each server runs 2 worker processes (`mlgen serve
--workers 2`; MLServer `parallel_workers: 2`, its defaults otherwise) and gets the same V2
request: one input per feature, request-level `content_type: pd`, FP64/BYTES inputs of shape
[1] (the shape MLServer's pandas codec reads). mlgen runs with its defaults, including the
sampled request log (10 %). Load comes from `wrk` (Debian package) in its own process, with a
Lua script that POSTs the body and prints percentiles as JSON. Points alternate between the
two servers, `--repeats` times each; the table shows medians. Then `--soak` seconds against
mlgen at `--target` connections must show zero errors (non-2xx, socket errors, timeouts).
MLServer lives in benchmarks/.work/mlserver-venv (created on first use: mlserver and
mlserver-sklearn 1.7.1, uvloop<0.22, this venv's scikit-learn version; see peers.md).

Target (issue 4): at the target concurrency, mlgen >= 2x MLServer's req/s with p99 < 25 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
WORK = ROOT / ".work" / "serve"
MLSERVER_VENV = ROOT / ".work" / "mlserver-venv"
NAME = "credit-risk"
NUMERIC = ("income", "age", "debt_ratio", "credit_lines")
CATEGORICAL = ("employment_type", "region")

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BENCH_BODY"), "r")
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def train_model(path: Path) -> None:
    """The scaffold's pipeline shape on credit-like data (same as
    tests/models/serving/modelkit.py)."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    rows = 5000
    frame = pd.DataFrame({
        "income": rng.lognormal(10, 0.5, rows), "age": rng.integers(18, 80, rows).astype(float),
        "debt_ratio": rng.uniform(0, 1, rows), "credit_lines": rng.poisson(3, rows).astype(float),
        "employment_type": rng.choice(["salaried", "self_employed", "unemployed"], rows),
        "region": rng.choice(["north", "south", "east", "west"], rows),
    })
    y = (2.5 * frame["debt_ratio"] + (frame["employment_type"] == "unemployed")
         + rng.normal(0, 0.4, rows) > 1.6).astype(int)
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(NUMERIC)),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), list(CATEGORICAL)),
    ])
    model = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))]).fit(frame, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)


def v2_body() -> dict:
    row = {"income": 52000.0, "age": 41.0, "debt_ratio": 0.37, "credit_lines": 3.0,
           "employment_type": "salaried", "region": "north"}
    inputs = [{"name": n, "datatype": "FP64", "shape": [1], "data": [row[n]]} for n in NUMERIC]
    inputs += [{"name": n, "datatype": "BYTES", "shape": [1], "parameters": {"content_type": "str"},
                "data": [row[n]]} for n in CATEGORICAL]
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_mlserver() -> Path:
    exe = MLSERVER_VENV / "bin" / "mlserver"
    if exe.exists():
        return exe
    import sklearn

    print(f"creating {MLSERVER_VENV} (mlserver 1.7.1) ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
    subprocess.run(
        [
            str(MLSERVER_VENV / "bin" / "pip"),
            "install",
            "-q",
            "mlserver==1.7.1",
            "mlserver-sklearn==1.7.1",
            "uvloop<0.22",
            f"scikit-learn=={sklearn.__version__}",
        ],
        check=True,
    )
    return exe


def post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_ready(url: str, proc: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"{what} not ready after {timeout} s ({url})")


def start_mlgen(model: Path, port: int, log_dir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mlgen", "serve", "--model", str(model), "--name", NAME,
           "--numeric", ",".join(NUMERIC), "--categorical", ",".join(CATEGORICAL),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
           "--request-log", str(log_dir / "requests"), "--sample-rate", "0.1"]
    return subprocess.Popen(cmd, stdout=open(log_dir / "mlgen.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def start_mlserver(exe: Path, model: Path, port: int, log_dir: Path) -> subprocess.Popen:
    folder = log_dir / "mlserver"
    (folder / NAME).mkdir(parents=True, exist_ok=True)
    shutil.copy(model, folder / NAME / "model.joblib")
    (folder / "settings.json").write_text(json.dumps({
        "parallel_workers": 2, "http_port": port, "grpc_port": free_port(),
        "metrics_port": free_port(), "host": "127.0.0.1"}))
    (folder / NAME / "model-settings.json").write_text(json.dumps({
        "name": NAME, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"}}))
    return subprocess.Popen([str(exe), "start", str(folder)], cwd=folder,
                            stdout=open(log_dir / "mlserver.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we created (start_new_session)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_wrk(url: str, connections: int, seconds: int, lua: Path, body: Path) -> dict:
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s",
         "-s", str(lua), url],
        capture_output=True, text=True, env={**os.environ, "BENCH_BODY": str(body)}, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("BENCH "))
    r = json.loads(line[len("BENCH "):])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--duration", type=int, default=10, help="seconds per point")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--soak", type=int, default=60, help="seconds of the zero-error run (0: skip)")
    ap.add_argument("--target", type=int, default=32, help="connections of the target point")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    levels = [int(c) for c in args.concurrency.split(",")]
    WORK.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    model = run_dir / "model.joblib"
    train_model(model)
    body_path, lua_path = run_dir / "body.json", run_dir / "post.lua"
    body_path.write_text(json.dumps(v2_body()))
    lua_path.write_text(LUA)
    exe = ensure_mlserver()

    mlgen_port, mls_port = free_port(), free_port()
    servers = {
        "mlgen": start_mlgen(model, mlgen_port, run_dir),
        "mlserver": start_mlserver(exe, model, mls_port, run_dir),
    }
    urls = {"mlgen": f"http://127.0.0.1:{mlgen_port}/v2/models/{NAME}/infer",
            "mlserver": f"http://127.0.0.1:{mls_port}/v2/models/{NAME}/infer"}
    try:
        for name, proc in servers.items():
            wait_ready(urls[name].replace("/infer", "/ready"), proc, name)
        # Same model, same request, same answer: otherwise the comparison means nothing.
        answers = {}
        for name, url in urls.items():
            status, reply = post(url, v2_body())
            if status != 200:
                raise SystemExit(f"{name} answered {status}: {reply}")
            answers[name] = next(o["data"] for o in reply["outputs"] if o["name"] == "predict")
        print(f"both servers predict {answers['mlgen']} for the benchmark row "
              f"(mlserver: {answers['mlserver']})", file=sys.stderr)
        for name, url in urls.items():  # warm-up
            run_wrk(url, 8, 2, lua_path, body_path)

        results: dict[tuple[str, int], list[dict]] = {}
        for c in levels:
            for rep in range(args.repeats):
                for name in ("mlserver", "mlgen") if rep % 2 == 0 else ("mlgen", "mlserver"):
                    r = run_wrk(urls[name], c, args.duration, lua_path, body_path)
                    results.setdefault((name, c), []).append(r)
                    print(f"  {name:8s} c={c:<3d} rep {rep + 1}: {r['rps']:8.0f} req/s  p50 "
                          f"{r['p50_us'] / 1000:6.2f} ms  p99 {r['p99_us'] / 1000:6.2f} ms  "
                          f"errors {r['errors']}", file=sys.stderr)
        soak = None
        if args.soak:
            soak = run_wrk(urls["mlgen"], args.target, args.soak, lua_path, body_path)
        with urllib.request.urlopen(f"http://127.0.0.1:{mlgen_port}/metrics", timeout=5) as resp:
            metrics_text = resp.read().decode()
    finally:
        for proc in servers.values():
            stop(proc)

    def med(name: str, c: int, key: str) -> float:
        return statistics.median(r[key] for r in results[(name, c)])

    print(f"\nmlgen serve vs MLServer 1.7.1 (sklearn runtime), 2 workers each, wrk single-row V2 "
          f"requests, {args.duration} s x {args.repeats} per point, medians; "
          f"{os.cpu_count()} CPUs shared with wrk")
    print(f"{'conc':>4} | {'MLServer req/s':>14} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'mlgen req/s':>11} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5} | errors (mls/mlgen)")
    verdict_rows = {}
    for c in levels:
        m_rps, g_rps = med("mlserver", c, "rps"), med("mlgen", c, "rps")
        errs = (sum(r["errors"] for r in results[("mlserver", c)]),
                sum(r["errors"] for r in results[("mlgen", c)]))
        ratio = g_rps / m_rps if m_rps else float("inf")
        verdict_rows[c] = (ratio, med("mlgen", c, "p99_us") / 1000)
        print(
            f"{c:>4} | {m_rps:>14.0f} {med('mlserver', c, 'p50_us') / 1000:>7.2f} "
            f"{med('mlserver', c, 'p99_us') / 1000:>7.2f} | {g_rps:>11.0f} "
            f"{med('mlgen', c, 'p50_us') / 1000:>7.2f} {med('mlgen', c, 'p99_us') / 1000:>7.2f} | "
            f"{ratio:>5.2f} | {errs[0]}/{errs[1]}"
        )
    batches = [ln for ln in metrics_text.splitlines() if ln.startswith("mlgen_batch_size_")
               and ("_sum" in ln or "_count" in ln)]
    if len(batches) == 2:
        total, count = (float(ln.split()[-1]) for ln in batches)
        print(f"mlgen mean rows per model call over the run: {total / max(count, 1):.1f}")
    ok = True
    if args.target in verdict_rows:
        ratio, p99 = verdict_rows[args.target]
        ok = ratio >= 2.0 and p99 < 25.0
        print(f"target at c={args.target}: ratio {ratio:.2f} (>= 2.0) and p99 {p99:.1f} ms "
              f"(< 25): {'MET' if ok else 'NOT MET'}")
    if soak is not None:
        print(
            f"soak: mlgen c={args.target} for {args.soak} s: {soak['requests']} requests, "
            f"{soak['rps']:.0f} req/s, p99 {soak['p99_us'] / 1000:.1f} ms, errors {soak['errors']} "
            f"(connect {soak['connect']}, read {soak['read']}, write {soak['write']}, "
            f"non-2xx {soak['status']}, timeout {soak['timeout']})"
        )
        ok = ok and soak["errors"] == 0
    (WORK / "latest.json").write_text(json.dumps(
        {f"{n}@{c}": v for (n, c), v in results.items()} | {"soak": soak}, indent=1))
    shutil.rmtree(run_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
