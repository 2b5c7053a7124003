"""`mlgen drift` beside Evidently's DataDriftPreset on the same synthetic data, in the same run.

    .venv/bin/python benchmarks/drift_bench.py [--rows 1000000] [--evidently-rows 1000000]
                  [--repeats 5] [--evidently-repeats 1] [--formats parquet,jsonl,csv]
    .venv/bin/python benchmarks/drift_bench.py --memory   # peak RSS at 100k vs 1M rows per format

Data: 25 numeric + 5 categorical features, reference and current of equal size, three numeric
features shifted by 0.5 std in the current window. Each tool runs as its own process (what a
CronJob pays: interpreter start, imports, reading the file, computing); we report the median
wall time of `--repeats` runs, the peak RSS of the process (os.wait4), the features each flagged,
and the ratio. Evidently runs in its own venv (benchmarks/.work/evidently-venv, created on first
use with `evidently` and `pandas<3`, see /work/shared/reference/peers.md).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WORK = ROOT / ".work" / "drift"
EV_VENV = ROOT / ".work" / "evidently-venv"
PLANTED = ("num03", "num11", "num20")
NUMERIC = [f"num{i:02d}" for i in range(25)]
CATEGORICAL = [f"cat{j}" for j in range(5)]
CATS = ["retail", "salaried", "self", "public", "other"]

EVIDENTLY_SCRIPT = r"""
import json, sys, time
import pandas as pd
from evidently import Report, Dataset, DataDefinition
from evidently.presets import DataDriftPreset
ref_path, cur_path = sys.argv[1], sys.argv[2]
numeric, categorical = sys.argv[3].split(","), sys.argv[4].split(",")
t = time.perf_counter()
ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
dd = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=dd),
                                       Dataset.from_pandas(ref, data_definition=dd))
drifted = []
for m in snap.dict()["metrics"]:
    cfg = m.get("config", {})
    if cfg.get("type", "").endswith("ValueDrift") and m["value"] >= cfg["threshold"]:
        drifted.append(cfg["column"])
print(json.dumps({"drifted": sorted(drifted), "core_seconds": time.perf_counter() - t}))
"""


def make_frame(rng, rows: int, shifted: tuple[str, ...]):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    cols: dict[str, object] = {}
    for i, name in enumerate(NUMERIC):
        cols[name] = rng.normal(0.5 if name in shifted else 0.0, 1.0, rows) * (1 + i) + 10 * i
    p = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
    for name in CATEGORICAL:
        cols[name] = np.array(CATS)[rng.choice(5, size=rows, p=p)]
    return pd.DataFrame(cols)


def write_jsonl(df, path: Path) -> None:  # type: ignore[no-untyped-def]
    """The server's request-log format, written in slices so memory stays moderate."""
    with path.open("w", encoding="utf-8") as fh:
        for start in range(0, len(df), 100_000):
            part = df.iloc[start:start + 100_000]
            feats = part.to_json(orient="records", lines=True).splitlines()
            ts = "2030-01-01T00:00:00.000000Z"
            fh.write("".join(f'{{"ts":"{ts}","model":"bench","features":{f},"prediction":0}}\n'
                             for f in feats))


def prepare(rows: int, sizes: list[int], formats: list[str]) -> dict[str, Path]:
    """Make the data in a child process: a forked child inherits the parent's peak RSS on Linux,
    so the measuring process must stay small for os.wait4's ru_maxrss to mean anything."""
    cmd = [sys.executable, __file__, "--prepare-only", "--rows", str(rows),
           "--evidently-rows", str(sizes[-1]), "--formats", ",".join(formats)]
    subprocess.run(cmd, check=True)
    return _paths(rows, sizes, formats)


def _paths(rows: int, sizes: list[int], formats: list[str]) -> dict[str, Path]:
    files = {"profile": WORK / f"profile-{rows}.json"}
    for n in sorted(set(sizes)):
        for fmt in formats:
            files[f"{fmt}-{n}"] = WORK / f"current-{n}.{fmt}"
        files[f"reference-{n}"] = WORK / f"reference-{n}.parquet"
    return files


def _prepare_here(rows: int, sizes: list[int], formats: list[str]) -> None:
    import numpy as np
    import pandas as pd

    WORK.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    ref_parquet = WORK / f"reference-{rows}.parquet"
    profile = WORK / f"profile-{rows}.json"
    if not ref_parquet.exists():
        make_frame(np.random.default_rng(1), rows, ()).to_parquet(ref_parquet)
    if not profile.exists():
        from mlgen.models.profile import write_profile

        t = time.perf_counter()
        write_profile(pd.read_parquet(ref_parquet), profile, numeric=NUMERIC,
                      categorical=CATEGORICAL, model="bench")
        print(f"profile of {rows:,} reference rows built in {time.perf_counter() - t:.1f} s "
              f"({profile.stat().st_size / 1024:.0f} KB)")
    files["profile"] = profile
    cur = make_frame(np.random.default_rng(2), max(sizes), PLANTED)
    for n in sorted(set(sizes)):
        for fmt in formats:
            path = WORK / f"current-{n}.{fmt}"
            if not path.exists():
                part = cur.iloc[:n]
                if fmt == "parquet":
                    part.to_parquet(path)
                elif fmt == "csv":
                    part.to_csv(path, index=False)
                else:
                    write_jsonl(part, path)
            files[f"{fmt}-{n}"] = path
        ref_n = WORK / f"reference-{n}.parquet"
        if not ref_n.exists():
            pd.read_parquet(ref_parquet).iloc[:n].to_parquet(ref_n)
        files[f"reference-{n}"] = ref_n


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB, stdout of one process."""
    out = cwd / ".stdout"
    with out.open("w") as fh:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, out.read_text()


def run_mlgen(profile: Path, current: Path, repeats: int, chunk_rows: int | None = None) -> dict:
    cmd = [sys.executable, "-m", "mlgen", "drift", "--reference", str(profile), "--current",
           str(current), "--window", "all", "--json"]
    if chunk_rows:
        cmd += ["--chunk-rows", str(chunk_rows)]
    walls, rss, core, drifted = [], [], [], []
    for _ in range(repeats):
        wall, peak, out = timed(cmd, WORK)
        doc = json.loads(out)
        walls.append(wall)
        rss.append(peak)
        core.append(doc["elapsed_seconds"])
        drifted = sorted(doc["dataset"]["drifted_features"])
    return {"wall": statistics.median(walls), "core": statistics.median(core),
            "rss": max(rss), "drifted": drifted}


def memory_table(files: dict[str, Path], small: int, rows: int, formats: list[str],
                 chunks: list[int]) -> None:
    """Peak RSS of the whole process at `small` and `rows` rows, per format and chunk size.

    Streaming means the peak is set by the chunk size: once two or three chunks are in flight it
    stays flat (a window shorter than that peaks lower, which is why the small size can be
    below the large one without memory growing with rows)."""
    print(f"\npeak RSS (MB) of `mlgen drift`, one run each; load average "
          f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'format':8} | {'chunk rows':>10} | {f'{small:,} rows':>12} | {f'{rows:,} rows':>12} | "
          f"{'1M / 100k':>9} | wall s (small / large)")
    print("-" * 90)
    for fmt in formats:
        for chunk in chunks:
            a = run_mlgen(files["profile"], files[f"{fmt}-{small}"], 1, chunk)
            b = run_mlgen(files["profile"], files[f"{fmt}-{rows}"], 1, chunk)
            print(f"{fmt:8} | {chunk:>10,} | {a['rss']:12.0f} | {b['rss']:12.0f} | "
                  f"{b['rss'] / a['rss']:9.2f} | {a['wall']:.2f} / {b['wall']:.2f}")


def ensure_evidently() -> Path | None:
    py = EV_VENV / "bin" / "python"
    if not py.exists():
        print("creating the Evidently venv (evidently, pandas<3) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(EV_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "evidently", "pandas<3", "pyarrow"],
                       check=True)
    return py


def run_evidently(py: Path, ref: Path, cur: Path, repeats: int) -> dict:
    script = WORK / "evidently_run.py"
    script.write_text(EVIDENTLY_SCRIPT)
    cmd = [str(py), str(script), str(ref), str(cur), ",".join(NUMERIC), ",".join(CATEGORICAL)]
    walls, rss, core, drifted = [], [], [], []
    for _ in range(repeats):
        wall, peak, out = timed(cmd, WORK)
        doc = json.loads(out.strip().splitlines()[-1])
        walls.append(wall)
        rss.append(peak)
        core.append(doc["core_seconds"])
        drifted = doc["drifted"]
    return {"wall": statistics.median(walls), "core": statistics.median(core),
            "rss": max(rss), "drifted": drifted}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument(
        "--evidently-rows",
        type=int,
        default=1_000_000,
        help="Evidently takes ~100 s and 2.7 GB at 1M rows here; 100000 for a short run.",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--formats", default="parquet,jsonl,csv")
    ap.add_argument("--skip-evidently", action="store_true")
    ap.add_argument("--evidently-repeats", type=int, default=0,
                    help="Runs of Evidently (default: --repeats); ~100 s each at 1M rows.")
    ap.add_argument("--memory", action="store_true",
                    help="Only the memory table: peak RSS at --small-rows vs --rows rows.")
    ap.add_argument("--small-rows", type=int, default=100_000)
    ap.add_argument("--chunks", default="10000,50000,250000",
                    help="Chunk sizes for --memory (50000 is the default of mlgen drift).")
    ap.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    if args.prepare_only:
        _prepare_here(args.rows, [args.rows, args.evidently_rows], formats)
        return 0
    if args.memory:
        files = prepare(args.rows, [args.rows, args.small_rows], formats)
        memory_table(files, args.small_rows, args.rows, formats,
                     [int(c) for c in args.chunks.split(",") if c])
        return 0
    files = prepare(args.rows, [args.rows, args.evidently_rows], formats)
    load_before = os.getloadavg()
    rows: list[tuple] = []
    results: dict[str, dict] = {}
    for fmt in formats:
        r = run_mlgen(files["profile"], files[f"{fmt}-{args.rows}"], args.repeats)
        results[f"mlgen-{fmt}-{args.rows}"] = r
        rows.append((args.rows, fmt, "mlgen drift", r))
    chunked = run_mlgen(files["profile"], files[f"parquet-{args.rows}"], args.repeats, 250_000)
    rows.append((args.rows, "parquet", "mlgen drift --chunk-rows 250000", chunked))
    small = results.get(f"mlgen-parquet-{args.evidently_rows}")
    if small is None:
        small = run_mlgen(files["profile"], files[f"parquet-{args.evidently_rows}"], args.repeats)
        rows.append((args.evidently_rows, "parquet", "mlgen drift", small))
    ev = None
    ev_repeats = args.evidently_repeats or args.repeats
    if not args.skip_evidently:
        py = ensure_evidently()
        assert py is not None
        ev = run_evidently(py, files[f"reference-{args.evidently_rows}"],
                           files[f"parquet-{args.evidently_rows}"], ev_repeats)
        rows.append((args.evidently_rows, "parquet", "Evidently DataDriftPreset", ev))
    load_after = os.getloadavg()

    print(f"\nmedian of {args.repeats} runs (Evidently: {ev_repeats}), whole process (start, "
          f"imports, read, compute); {os.cpu_count()} cores shared with other jobs: load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (1-min), "
          f"{load_after[1]:.1f} over 5 min; planted: {', '.join(PLANTED)}")
    print(f"{'rows':>10} | {'format':7} | {'tool':32} | {'wall s':>7} | {'core s':>7} | "
          f"{'peak RSS MB':>11} | {'vs Evidently':>12} | flagged")
    print("-" * 120)
    for n, fmt, tool, r in rows:
        ratio = ""  # only beside Evidently on the same rows and format
        if ev is not None and tool.startswith("mlgen") and n == args.evidently_rows \
                and fmt == "parquet":
            ratio = f"{ev['wall'] / r['wall']:.1f}x faster"
        elif ev is not None and not tool.startswith("mlgen"):
            ratio = "1.0x"
        flagged = (
            ",".join(r["drifted"]) if r["drifted"] != sorted(PLANTED) else "exactly the 3 planted"
        )
        print(f"{n:>10,} | {fmt:7} | {tool:32} | {r['wall']:7.2f} | {r['core']:7.2f} | "
              f"{r['rss']:11.0f} | {ratio:>12} | {flagged}")
    if ev is not None:
        print(f"\nsame rows ({args.evidently_rows:,}, Parquet): mlgen drift "
              f"{ev['wall'] / small['wall']:.1f}x faster than Evidently; same features flagged: "
              f"{ev['drifted'] == small['drifted']} ({', '.join(ev['drifted'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
