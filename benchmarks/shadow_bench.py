"""What mirroring to a shadow costs the champion: `mlgen serve` alone vs the same server
mirroring to a live shadow and to a hung one, in the same run.

    .venv/bin/python benchmarks/shadow_bench.py [--concurrency 8] [--duration 5] [--repeats 3]

Model and request: serve_bench.py's (credit-like pipeline, one-row V2 infer). Three champions
run at once, 2 workers each, sample-rate 0.1 request log: `plain` (no shadow, the peer),
`shadow` (--shadow-url to a fourth `mlgen serve`, 1 worker) and `hung` (--shadow-url to a
socket that accepts and never answers, so every copy waits out the 1 s deadline and the queue
drops). Load: `--concurrency` keep-alive client threads split over two client processes
(Python's http.client; wrk is not available everywhere), alternating the champions, medians
over `--repeats`. Reported: req/s, p50 and p99 latency, the ratio to `plain`, and the
champions' mirroring counters. Everything shares the machine's CPUs, the shadow included:
the ratio is what mirroring costs on a busy node, not on an idle one.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from serve_bench import (
    CATEGORICAL,
    NAME,
    NUMERIC,
    WORK,
    free_port,
    stop,
    train_model,
    v2_body,
    wait_ready,
)

INFER = f"/v2/models/{NAME}/infer"


def start(model: Path, port: int, log_dir: Path, workers: int, shadow: str | None
          ) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mlgen", "serve", "--model", str(model), "--name", NAME,
           "--numeric", ",".join(NUMERIC), "--categorical", ",".join(CATEGORICAL),
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--request-log", str(log_dir / f"requests-{port}"), "--sample-rate", "0.1"]
    if shadow:
        cmd += ["--shadow-url", shadow]
    return subprocess.Popen(cmd, stdout=open(log_dir / f"serve-{port}.log", "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _client(port: int, threads: int, seconds: float, body: bytes, out: multiprocessing.Queue
            ) -> None:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine: list[float] = []
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            try:
                conn.request("POST", INFER, body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((latencies, errors[0]))


def load(port: int, concurrency: int, seconds: float, body: bytes) -> dict[str, float]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    split = [concurrency // 2 + concurrency % 2, concurrency // 2]
    procs = [multiprocessing.Process(target=_client, args=(port, n, seconds, body, queue))
             for n in split if n]
    started = time.monotonic()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    return {"rps": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "errors": float(sum(e for _, e in results))}


def mirror_counts(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("mlgen_shadow_requests_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = float(line.rsplit(" ", 1)[1])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per point")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="shadow-", dir=WORK))
    model = run_dir / "model.joblib"
    train_model(model)
    body = json.dumps(v2_body()).encode()

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(4096)  # the kernel completes the handshakes; nobody ever reads or answers
    ports = {name: free_port() for name in ("shadow-server", "plain", "shadow", "hung")}
    procs = {
        "shadow-server": start(model, ports["shadow-server"], run_dir, 1, None),
        "plain": start(model, ports["plain"], run_dir, 2, None),
        "shadow": start(model, ports["shadow"], run_dir, 2,
                        f"http://127.0.0.1:{ports['shadow-server']}"),
        "hung": start(model, ports["hung"], run_dir, 2,
                      f"http://127.0.0.1:{hung.getsockname()[1]}"),
    }
    champions = ("plain", "shadow", "hung")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in champions}
    try:
        for name, proc in procs.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}/v2/health/ready", proc, name)
        for name in champions:  # warm-up
            load(ports[name], args.concurrency, 1.0, body)
        for rep in range(args.repeats):
            order = champions if rep % 2 == 0 else tuple(reversed(champions))
            for name in order:
                r = load(ports[name], args.concurrency, args.duration, body)
                results[name].append(r)
                print(f"  {name:6s} rep {rep + 1}: {r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.2f}"
                      f" ms  p99 {r['p99_ms']:6.2f} ms  errors {r['errors']:.0f}",
                      file=sys.stderr)
        counts = {name: mirror_counts(ports[name]) for name in ("shadow", "hung")}
    finally:
        for proc in procs.values():
            stop(proc)
        hung.close()

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(f"\nchampion mirroring cost: {args.concurrency} keep-alive clients, one-row V2 "
          f"infer, {args.duration:g} s x {args.repeats} per point, medians; "
          f"{os.cpu_count()} CPUs shared by clients, champions and the shadow")
    print(f"{'champion':>8} | {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} | {'req/s vs plain':>14} | "
          f"{'p99 vs plain':>12} | errors")
    for name in champions:
        print(f"{name:>8} | {med(name, 'rps'):>7.0f} {med(name, 'p50_ms'):>7.2f} "
              f"{med(name, 'p99_ms'):>7.2f} | {med(name, 'rps') / med('plain', 'rps'):>14.2f} | "
              f"{med(name, 'p99_ms') / med('plain', 'p99_ms'):>12.2f} | "
              f"{sum(r['errors'] for r in results[name]):.0f}")
    for name, c in counts.items():
        print(f"{name}: mirrored copies " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(c.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
