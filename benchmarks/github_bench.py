"""GitHub fleet sync benchmark: requests per repository and wall time, against the emulator.

500 repositories (400 up to date, 100 needing a change), 20 ms emulator latency per request.
Each repository is an `mlgen init` project (its own name) rendered with the real templates and
synced; a changed one has had its spec changed since (serve.port), as a template rollout or a
spec edit leaves it. mlgen plans exactly as local `mlgen sync` does (lock as merge base):
one GraphQL query (base commit, mlgen.yaml, lock, sync branch and its open PR) and one
recursive tree read by SHA, comparing by git blob SHA; the peer is the straightforward
script a team would otherwise write: read the tree, then download every generated file to
compare contents. Both run against the same emulator, in its own process.

    .venv/bin/python benchmarks/github_bench.py [--repos 500] [--changed 100] [--rounds 3]
                                                [--render real|stub]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Self

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlgen.integrations.github import client as gh
from mlgen.publish.github.fleet import FleetOptions, run_fleet, summary_table
from mlgen.publish.github.sync_pr import render_remote, sync_pull_request, synced_files

from tests.emulators.github import DEFAULT_TOKEN

REPO_ROOT = Path(__file__).resolve().parents[1]

GENERATED = ("Jenkinsfile", ".github/workflows/ci.yml", ".github/workflows/drift.yml",
             "Dockerfile", "k8s/base/deployment.yaml", "k8s/base/kustomization.yaml")
RENDER: Any = None  # None: the real renderer; else the stand-in below
# The emulator counts GraphQL queries as "GRAPHQL" (they POST but change nothing): every other
# method except GET is a write.
READS = frozenset({"GET", "GRAPHQL"})


class EmulatorProcess:
    """The GitHub emulator in its own process, driven over its admin HTTP API, so its work
    (graphql-core, JSON, git subprocesses) does not share this process's GIL with mlgen, as
    github.com would not. The same choice as benchmarks/jenkins_bench.py."""

    def __init__(self) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.state = Path(tempfile.mkdtemp(prefix="mlgen-gh-bench-"))
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.emulators.github", "--port", str(port), "--state",
             str(self.state), "--demo-repo", ""], cwd=REPO_ROOT, stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if "GitHub emulator on" not in line:
            self.close()
            raise SystemExit(f"the emulator did not start: {line!r}")

    def _call(self, method: str, op: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_emulator/{op}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def add_repo(self, full_name: str, files: dict[str, str | bytes]) -> None:
        self._call("POST", "repos", {"full_name": full_name, "files": {
            p: d.decode() if isinstance(d, bytes) else d for p, d in files.items()}})

    def faults(self, **kw: Any) -> None:
        self._call("POST", "faults", kw)

    def counts(self) -> dict[str, int]:
        return dict(self._call("GET", "requests")["by_method"])

    def reset_counts(self) -> None:
        self._call("POST", "reset")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the emulator stops on Ctrl-C
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.state, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stub_render(spec_text: str) -> dict[str, bytes]:
    """A stand-in renderer (--render stub: measures GitHub traffic only, not Jinja)."""
    name = spec_text.split("name:")[1].split()[0]
    port = spec_text.split("port:")[1].split()[0] if "port:" in spec_text else "8080"
    return {p: f"# generated for {name} on port {port}\n{p}\n".encode() for p in GENERATED}


def base_spec() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "mlgen", "init", f"{tmp}/p", "--non-interactive",
                        "--name", "model-x"], check=True, capture_output=True)
        return Path(f"{tmp}/p/mlgen.yaml").read_text()


def seed(emu: EmulatorProcess, repos: int, changed: int, spec: str) -> list[dict[str, str]]:
    entries = []
    for i in range(repos):
        name = f"fleet/model-{i:03d}"
        own = spec.replace("model-x", f"model-{i:03d}")
        files = {p: d for p, d in synced_files(own, RENDER).items()}
        if i < changed:  # the spec moved on since the last sync
            own = own.replace("port: 8080", "port: 9090")
        emu.add_repo(name, {"mlgen.yaml": own, "src/train.py": "print('train')\n", **files})
        entries.append({"repository": name, "branch": "main"})
    return entries


def naive_sync(client: gh.GitHubClient, repository: str, **kw: Any) -> dict[str, Any]:
    """The peer: read the tree and the spec, then download every generated file."""
    repo = client.repo(repository)
    tree = gh.read_tree(client, repo, kw.get("base_branch") or "HEAD")
    spec = gh.read_blob(client, repo, tree.blob_sha("mlgen.yaml") or "")
    desired = (RENDER or render_remote)(spec.decode())
    differ = [p for p, data in desired.items()
              if (sha := tree.blob_sha(p)) is None or gh.read_blob(client, repo, sha) != data]
    return {"repository": repository, "status": "would-change" if differ else "up-to-date"}


def one_round(args: argparse.Namespace) -> dict[str, float]:
    with EmulatorProcess() as emu:
        t0 = time.perf_counter()
        entries = seed(emu, args.repos, args.changed, args.spec)
        seed_s = time.perf_counter() - t0
        emu.faults(latency_ms=args.latency_ms)
        client = gh.connect(gh.Settings.from_env(
            {"GITHUB_TOKEN": DEFAULT_TOKEN, "GITHUB_API_URL": emu.url},
            seconds_between_writes=args.write_interval))

        def sync(c: Any, repository: str, **kw: Any) -> dict[str, Any]:
            return sync_pull_request(c, repository, render=RENDER, **kw)

        out: dict[str, float] = {"seed_s": seed_s}
        with tempfile.TemporaryDirectory() as tmp:
            for label, state in (("first", None), ("second", None),
                                 ("resume", Path(tmp) / "state.json")):
                if label == "resume":  # a run that records state, then the rerun that skips
                    run_fleet(client, entries, FleetOptions(args.concurrency, state_path=state),
                              sync, progress=None)
                emu.reset_counts()
                t = time.perf_counter()
                outcomes = run_fleet(client, entries, FleetOptions(
                    args.concurrency, state_path=state), sync, progress=None)
                out[f"{label}_s"] = time.perf_counter() - t
                counts = emu.counts()
                out[f"{label}_requests"] = sum(counts.values())
                out[f"{label}_writes"] = sum(v for k, v in counts.items() if k not in READS)
                if label == "first":
                    print(summary_table(outcomes).splitlines()[-1], file=sys.stderr)
                    failed = [o for o in outcomes if o["status"] == "failed"]
                    assert not failed, failed[:3]
        # requests per kind of repository, each measured on its own
        emu.reset_counts()
        sync_pull_request(client, entries[-1]["repository"], render=RENDER, base_branch="main")
        out["per_uptodate"] = sum(emu.counts().values())
        # a changed repository, fresh: re-seed one with the stale spec under a new name
        fresh = "solo/changed"
        solo = args.spec.replace("model-x", "solo")
        emu.add_repo(fresh, {**synced_files(solo, RENDER),
                             "mlgen.yaml": solo.replace("port: 8080", "port: 9090")})
        emu.reset_counts()
        sync_pull_request(client, fresh, render=RENDER, base_branch="main")
        out["per_changed"] = sum(emu.counts().values())
        out["per_changed_writes"] = sum(v for k, v in emu.counts().items() if k not in READS)
        emu.reset_counts()
        t = time.perf_counter()
        run_fleet(client, entries, FleetOptions(args.concurrency, dry_run=True), naive_sync,
                  progress=None)
        out["naive_s"] = time.perf_counter() - t
        out["naive_requests"] = sum(emu.counts().values())
        emu.reset_counts()
        t = time.perf_counter()
        run_fleet(client, entries, FleetOptions(args.concurrency, dry_run=True), sync,
                  progress=None)
        out["dry_s"] = time.perf_counter() - t
        out["dry_requests"] = sum(emu.counts().values())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=int, default=500)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--write-interval", type=float, default=0.0,
                        help="minimum seconds between mutating requests (GitHub asks 1.0; the "
                             "benchmark measures traffic, so 0 by default)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--render", choices=("real", "stub"), default="real",
                        help="the real templates (default) or a stand-in renderer")
    args = parser.parse_args()
    global RENDER
    RENDER = None if args.render == "real" else stub_render
    args.spec = base_spec() if args.render == "real" else "name: model-x\nport: 8080\n"
    rounds = [one_round(args) for _ in range(args.rounds)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    n, changed = args.repos, args.changed
    print(f"\nGitHub fleet sync: {n} repositories ({n - changed} up to date, {changed} "
          f"changed), {args.latency_ms:g} ms latency, {args.concurrency} workers, "
          f"{args.render} renderer, median of {args.rounds} round(s)\n")
    rows = [
        ("requests per up-to-date repository (target <= 2)", f"{med('per_uptodate'):.0f}", ""),
        ("requests per changed repository incl. PR (target <= 8)",
         f"{med('per_changed'):.0f}", f"{med('per_changed_writes'):.0f} writes"),
        ("first run: wall time", f"{med('first_s'):.1f} s", (f"{med('first_requests'):.0f} req, "
         f"{med('first_writes'):.0f} writes")),
        ("second run (no state file): wall time", f"{med('second_s'):.1f} s",
         f"{med('second_requests'):.0f} req, {med('second_writes'):.0f} writes"),
        ("rerun with the state file", f"{med('resume_s'):.2f} s",
         f"{med('resume_requests'):.0f} req, {med('resume_writes'):.0f} writes"),
        ("dry run, mlgen (blob SHA compare)", f"{med('dry_s'):.1f} s",
         f"{med('dry_requests'):.0f} req"),
        ("dry run, peer (download every generated file)", f"{med('naive_s'):.1f} s",
         f"{med('naive_requests'):.0f} req"),
        ("ratio peer / mlgen (requests, time)",
         f"{med('naive_requests') / med('dry_requests'):.2f}x",
         f"{med('naive_s') / med('dry_s'):.2f}x"),
    ]
    w = max(len(r[0]) for r in rows)
    for label, value, extra in rows:
        print(f"{label.ljust(w)}  {value:>9}  {extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
