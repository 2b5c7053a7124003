"""mlgen jenkins apply beside jenkins-job-builder's `jenkins-jobs update`, on one emulator.

500 model jobs (multibranch, GitHub Branch Source) in 10 team folders under `ml/`; the
emulator (its own process) answers every request after 20 ms, as a remote controller would.
Each run starts a fresh emulator per tool and measures, in the same run:

  first apply     everything is created (mlgen creates the folders; JJB gets them as
                  `project-type: folder` jobs, since it does not create missing folders)
  re-apply        nothing changed

for mlgen without a cache, mlgen with `--cache`, and `jenkins-jobs update` (its hash cache in a
temporary XDG_CACHE_HOME). Requests are counted by the emulator; wall time includes process
start. Medians of --runs runs.

    .venv/bin/python benchmarks/jenkins_bench.py [--jobs 500] [--runs 3] [--latency-ms 20]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TEAMS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator:
    def __init__(self, latency_ms: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.emulators.jenkins", "--port", str(self.port),
             "--user", "admin:admin:bench-token", "--latency-ms", str(latency_ms)],
            cwd=ROOT, stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                self.admin("GET", "stats")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the emulator did not start")

    def admin(self, method: str, what: str) -> dict:
        req = urllib.request.Request(self.url + "_emulator/" + what, method=method,
                                     data=b"{}" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def make_inputs(work: Path, jobs: int) -> tuple[Path, Path]:
    """A fleet of `jobs` mlgen.yaml files, and the equivalent jenkins-job-builder YAML."""
    members, jjb = [], []
    for team in range(TEAMS):
        jjb.append(f"- job:\n    name: ml/team-{team:02d}\n    project-type: folder\n")
    jjb.insert(0, "- job:\n    name: ml\n    project-type: folder\n")
    for i in range(jobs):
        team = i % TEAMS
        repo = work / "repos" / f"model-{i:03d}"
        repo.mkdir(parents=True)
        (repo / "mlgen.yaml").write_text(
            "apiVersion: mlgen/v1\n"
            f"name: model-{i:03d}\n"
            f"description: Model {i} of team {team}\n"
            "model:\n  features: {numeric: [x1, x2]}\n"
            f"ci:\n  jenkins: {{folder: ml/team-{team:02d}, kind: multibranch}}\n"
            f"  github: {{repository: bank-ml/model-{i:03d}}}\n")
        members.append(f"  - repos/model-{i:03d}\n")
        jjb.append(
            f"- job:\n    name: ml/team-{team:02d}/model-{i:03d}\n    project-type: multibranch\n"
            f"    description: Model {i} of team {team}\n    script-path: Jenkinsfile\n"
            "    scm:\n      - github:\n          repo: model-{n}\n          repo-owner: bank-ml\n"
            "          credentials-id: github-app\n".replace("{n}", f"{i:03d}"))
    fleet = work / "fleet.yaml"
    fleet.write_text("concurrency: 8\nrepositories:\n" + "".join(members))
    (work / "jjb").mkdir()
    (work / "jjb" / "jobs.yaml").write_text("".join(jjb))
    return fleet, work / "jjb"


def timed(cmd: list[str], env: dict[str, str], emu: Emulator) -> tuple[float, int]:
    emu.admin("POST", "reset-stats")
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{done.stderr[-2000:]}")
    return wall, int(emu.admin("GET", "stats").get("total", 0))


def one_run(work: Path, fleet: Path, jjb_dir: Path, latency: float) -> dict[str, tuple[float, int]]:
    out: dict[str, tuple[float, int]] = {}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("JENKINS_")}
    for tool in ("mlgen", "mlgen --cache", "jjb"):
        emu = Emulator(latency)
        try:
            cache = tempfile.mkdtemp(prefix="bench-cache-", dir=work)
            env = dict(base_env, JENKINS_URL=emu.url, JENKINS_USER="admin",
                       JENKINS_API_TOKEN="bench-token", XDG_CACHE_HOME=cache, HOME=cache)
            if tool == "jjb":
                conf = Path(cache) / "jjb.ini"
                conf.write_text(f"[jenkins]\nurl={emu.url}\nuser=admin\npassword=bench-token\n")
                cmd = [str(BIN / "jenkins-jobs"), "--conf", str(conf), "update", str(jjb_dir)]
            else:
                cmd = [str(BIN / "mlgen"), "jenkins", "apply", "--fleet", str(fleet)]
                cmd += ["--cache"] if "cache" in tool else []
            out[f"{tool}|first apply"] = timed(cmd, env, emu)
            out[f"{tool}|unchanged re-apply"] = timed(cmd, env, emu)
        finally:
            emu.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    runs: list[dict[str, tuple[float, int]]] = []
    with tempfile.TemporaryDirectory(prefix="jenkins-bench-") as tmp:
        work = Path(tmp)
        fleet, jjb_dir = make_inputs(work, args.jobs)
        for n in range(args.runs):
            runs.append(one_run(work, fleet, jjb_dir, args.latency_ms))
            print(f"run {n + 1}/{args.runs} done", file=sys.stderr)
    keys = list(runs[0])
    med = {k: (statistics.median(r[k][0] for r in runs), statistics.median(r[k][1] for r in runs))
           for k in keys}
    print(f"\n{args.jobs} jobs in {TEAMS} folders, emulator latency {args.latency_ms:g} ms, "
          f"medians of {args.runs} runs\n")
    print(f"{'tool':15} {'phase':20} {'requests':>9} {'req/job':>8} {'wall s':>8} {'JJB/tool':>9}")
    for key in keys:
        tool, phase = key.split("|")
        wall, reqs = med[key]
        jjb_wall = med[f"jjb|{phase}"][0]
        print(f"{tool:15} {phase:20} {reqs:9.0f} {reqs / args.jobs:8.2f} {wall:8.2f} "
              f"{jjb_wall / wall:8.1f}x")
    speedup = med["jjb|first apply"][0] / med["mlgen|first apply"][0]
    checks = [
        (
            "unchanged re-apply without cache <= 1 request/job",
            med["mlgen|unchanged re-apply"][1] <= args.jobs,
        ),
        (
            "unchanged re-apply with cache = 0 requests",
            med["mlgen --cache|unchanged re-apply"][1] == 0,
        ),
        (f"first apply >= 3x faster than JJB (got {speedup:.1f}x)", speedup >= 3),
    ]
    print()
    for text, ok in checks:
        print(f"[{'ok' if ok else 'MISSED'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
