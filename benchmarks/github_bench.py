"""GitHub fleet sync benchmark: requests per repository and wall time, against the emulator.

500 repositories (400 up to date, 100 needing a change), 20 ms emulator latency per request.
mlgen compares by git blob SHA from one recursive tree read; the peer is the straightforward
script a team would otherwise write: read the tree, then download every generated file to
compare contents. Both run in the same process on the same emulator.

    .venv/bin/python benchmarks/github_bench.py [--repos 500] [--changed 100] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlgen.github_fleet import FleetOptions, run_fleet, summary_table
from mlgen.github_sync import sync_pull_request
from mlgen.integrations import github as gh

from tests.emulators.github import DEFAULT_TOKEN, Emulator

GENERATED = ("Jenkinsfile", ".github/workflows/ci.yml", ".github/workflows/drift.yml",
             "Dockerfile", "k8s/base/deployment.yaml", "k8s/base/kustomization.yaml")


def render(spec_text: str) -> dict[str, bytes]:
    """A stand-in renderer (the benchmark measures GitHub traffic, not Jinja)."""
    name = spec_text.split("name:")[1].split()[0]
    version = "2" if "v2" in spec_text else "1"
    return {p: f"# generated for {name} by template v{version}\n{p}\n".encode()
            for p in GENERATED}


def seed(emu: Emulator, repos: int, changed: int) -> list[dict[str, str]]:
    entries = []
    for i in range(repos):
        name = f"fleet/model-{i:03d}"
        stale = i < changed
        spec = f"name: model-{i:03d}\n# template {'v2' if stale else 'v1'}\n"
        files = {p: d.decode() for p, d in render(f"name: model-{i:03d}\n").items()}
        emu.add_repo(name, {"mlgen.yaml": spec, "src/train.py": "print('train')\n", **files})
        entries.append({"repository": name, "branch": "main"})
    return entries


def naive_sync(client: gh.GitHubClient, repository: str, **kw: Any) -> dict[str, Any]:
    """The peer: read the tree and the spec, then download every generated file."""
    repo = client.repo(repository)
    tree = gh.read_tree(client, repo, kw.get("base_branch") or "HEAD")
    spec = gh.read_blob(client, repo, tree.blob_sha("mlgen.yaml") or "")
    desired = render(spec.decode())
    differ = [p for p, data in desired.items()
              if (sha := tree.blob_sha(p)) is None or gh.read_blob(client, repo, sha) != data]
    return {"repository": repository, "status": "would-change" if differ else "up-to-date"}


def one_round(args: argparse.Namespace) -> dict[str, float]:
    with Emulator() as emu:
        t0 = time.perf_counter()
        entries = seed(emu, args.repos, args.changed)
        seed_s = time.perf_counter() - t0
        emu.faults(latency_ms=args.latency_ms)
        client = gh.connect(gh.Settings.from_env(
            {"GITHUB_TOKEN": DEFAULT_TOKEN, "GITHUB_API_URL": emu.url},
            seconds_between_writes=args.write_interval))

        def sync(c: Any, repository: str, **kw: Any) -> dict[str, Any]:
            return sync_pull_request(c, repository, render=render, **kw)

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
                out[f"{label}_writes"] = sum(v for k, v in counts.items() if k != "GET")
                if label == "first":
                    print(summary_table(outcomes).splitlines()[-1], file=sys.stderr)
                    failed = [o for o in outcomes if o["status"] == "failed"]
                    assert not failed, failed[:3]
        # requests per kind of repository, each measured on its own
        emu.reset_counts()
        sync_pull_request(client, entries[-1]["repository"], render=render, base_branch="main")
        out["per_uptodate"] = sum(emu.counts().values())
        # a changed repository, fresh: re-seed one with the stale spec under a new name
        fresh = "solo/changed"
        emu.add_repo(fresh, {"mlgen.yaml": "name: solo\n# template v2\n",
                             **{p: d.decode() for p, d in render("name: solo\n").items()}})
        emu.reset_counts()
        sync_pull_request(client, fresh, render=render, base_branch="main")
        out["per_changed"] = sum(emu.counts().values())
        out["per_changed_writes"] = sum(v for k, v in emu.counts().items() if k != "GET")
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
    args = parser.parse_args()
    rounds = [one_round(args) for _ in range(args.rounds)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    n, changed = args.repos, args.changed
    print(f"\nGitHub fleet sync: {n} repositories ({n - changed} up to date, {changed} "
          f"changed), {args.latency_ms:g} ms latency, {args.concurrency} workers, "
          f"median of {args.rounds} round(s)\n")
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
