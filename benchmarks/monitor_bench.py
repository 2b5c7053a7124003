"""`mlgen monitor` beside pandas + scikit-learn and NannyML on the same data, in the same run.

    .venv/bin/python benchmarks/monitor_bench.py [--predictions 1000000] [--labels 1000000]
                  [--repeats 3] [--nannyml-repeats 1] [--skip-nannyml]
    .venv/bin/python benchmarks/monitor_bench.py --quick   # 20k x 20k, one repeat: a smoke test

Data (benchmarks/monitor_data.py), in the real formats: a request-log folder
(requests.jsonl.3 .. .1, requests.jsonl, lines `{"ts","model","id","features","prediction",
"score"}` as models/serving/reqlog.py writes them, eight features per line) and a labels store
(labels.jsonl, `{"id","label","labelled_at"}` as models/monitor/store.py writes it), with
retried predictions, corrected labels, unknown ids and late labels planted.

Each contender runs as its own process (what a CronJob pays: interpreter start, imports,
reading, joining, computing), on the same files (the peers: benchmarks/monitor_peer.py):
- mlgen: `python -m mlgen -C PROJECT monitor --json` (models/monitor/run.py, reports written);
- pandas + scikit-learn: read_json (pyarrow engine), drop_duplicates, merge, the window mask,
  then roc_auc_score, accuracy_score, f1_score, precision_score, recall_score,
  brier_score_loss;
- NannyML: the same pandas read and merge, then `nannyml.PerformanceCalculator` (realized
  performance, one chunk over the window, fitted on a 50k-row reference set), in its own venv
  (benchmarks/.work/nannyml-venv: `nannyml`, `pandas<3`, and `statsmodels`, which it imports
  without declaring it); if it does not install or import, the result says so with the
  error, and there is no number for it.
We report the median wall and CPU (user + sys) time of `--repeats` runs, the core time each
reports for itself (after its imports), the peak RSS (os.wait4), and the ratios. The point
values must agree (metrics to 1e-9, counts exactly) or the run fails; confidence intervals
differ by design and are not compared. The data is made in a child process
(`--prepare-only`) so the measuring process stays small: a forked child inherits its parent's
peak RSS on Linux.
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
from typing import Any

from monitor_data import (
    LOG_FILES,
    MODEL,
    NOW,
    WINDOW_DAYS,
    log_files,
    make_data,
    write_labels,
    write_log,
    write_project,
    write_reference,
)

ROOT = Path(__file__).resolve().parent
PEER = ROOT / "monitor_peer.py"
WORK = ROOT / ".work" / "monitor"
NML_VENV = ROOT / ".work" / "nannyml-venv"
# nannyml 0.13.1 imports statsmodels (nannyml/plots/components/joy_plot.py) without declaring
# it, and is not tested with pandas 3 (main's venv has pandas 3.x).
NML_PACKAGES = ("nannyml", "pandas<3", "pyarrow", "statsmodels")
NML_METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall")  # NannyML has no brier
COUNTS = ("labels_read", "duplicate_labels", "unknown_ids", "late_labels", "labelled",
          "predictions_in_window", "duplicate_prediction_ids")
TOLERANCE = 1e-9


class Disagreement(AssertionError):
    """The contenders computed different point values on the same data."""


# ---------------------------------------------------------------------------------- the data

def _paths(n_preds: int, n_labels: int, work: Path) -> dict[str, Path]:
    base = work / f"p{n_preds}-l{n_labels}"
    return {"base": base, "logs": base / "logs", "labels": base / "labels.jsonl",
            "reference": base / "reference.parquet", "project": base / "project"}


def prepare(n_preds: int, n_labels: int, work: Path) -> dict[str, Path]:
    """Make the data in a child process (see the module docstring)."""
    subprocess.run([sys.executable, __file__, "--prepare-only", "--predictions", str(n_preds),
                    "--labels", str(n_labels), "--work", str(work)], check=True)
    return _paths(n_preds, n_labels, work)


def _prepare_here(n_preds: int, n_labels: int, work: Path) -> None:
    p = _paths(n_preds, n_labels, work)
    done = p["base"] / ".complete"
    if done.exists():
        return
    t = time.perf_counter()
    data = make_data(n_preds, n_labels)
    write_log(data, p["logs"])
    write_labels(data, p["labels"])
    write_reference(p["reference"])
    write_project(p["project"], p["logs"], p["labels"])
    size = sum(f.stat().st_size for f in log_files(p["logs"])) / 2**20
    print(f"data: {n_preds:,} predictions ({size:.0f} MB in {LOG_FILES} files), {n_labels:,} "
          f"labels, made in {time.perf_counter() - t:.1f} s", flush=True)
    done.write_text("ok\n")


# ------------------------------------------------------------------------------ the contenders

def timed(cmd: list[str], cwd: Path) -> tuple[float, float, float, int, str, str]:
    """Wall seconds, CPU seconds (user + sys), peak RSS in MB, exit code, stdout and stderr of
    one process. CPU time is what to compare on a machine shared with other jobs: wall time
    there includes waiting for a core."""
    out, err = cwd / ".stdout", cwd / ".stderr"
    with out.open("w") as fo, err.open("w") as fe:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fo, stderr=fe)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    return (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
            os.waitstatus_to_exitcode(status), out.read_text(), err.read_text())


def _repeat(cmd: list[str], cwd: Path, repeats: int, parse: Any, ok: tuple[int, ...] = (0,)
            ) -> dict[str, Any]:
    walls, cpus, rss, core = [], [], [], []
    doc: dict[str, Any] = {}
    for _ in range(repeats):
        wall, cpu, peak, code, out, err = timed(cmd, cwd)
        if code not in ok:
            raise SystemExit(f"{cmd[0]} ... exited {code}:\n{err[-2000:]}")
        doc = parse(out)
        walls.append(wall)
        cpus.append(cpu)
        rss.append(peak)
        core.append(doc["core_seconds"])
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus),
            "core": statistics.median(core), "rss": max(rss), "walls": walls,
            "metrics": doc["metrics"], "counts": doc["counts"]}


def _mlgen_doc(out: str) -> dict[str, Any]:
    doc = json.loads(out)
    if doc.get("error"):
        raise SystemExit(f"mlgen monitor: {doc['error']}")
    return {"metrics": {k: v["value"] for k, v in doc["metrics"].items()},
            "counts": {k: doc["counts"][k] for k in COUNTS}, "core_seconds":
            doc["elapsed_seconds"]}


def run_mlgen(p: dict[str, Path], repeats: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "mlgen", "-C", str(p["project"]), "monitor", "--now", NOW,
           "--json"]
    return _repeat(cmd, p["project"], repeats, _mlgen_doc, ok=(0, 1))  # 1: a drop, a verdict


def _script_args(p: dict[str, Path], engine: str, metrics: tuple[str, ...] = ()) -> str:
    return json.dumps({"logs": [str(f) for f in log_files(p["logs"])], "labels": str(p["labels"]),
                       "model": MODEL, "now": NOW, "window_days": WINDOW_DAYS, "engine": engine,
                       "reference": str(p["reference"]), "metrics": list(metrics)})


def _last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_pandas(p: dict[str, Path], repeats: int, engine: str) -> dict[str, Any]:
    return _repeat([sys.executable, str(PEER), "pandas", _script_args(p, engine)], p["base"],
                   repeats, _last_json)


def ensure_nannyml() -> tuple[Path | None, str]:
    """The venv's python, or None and pip's error (the benchmark reports it, no number)."""
    py = NML_VENV / "bin" / "python"
    ok = NML_VENV / ".installed"
    if ok.exists():
        return py, ""
    print(f"creating the NannyML venv ({', '.join(NML_PACKAGES)}) ...", flush=True)
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(NML_VENV)], check=True)
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", *NML_PACKAGES],
                         check=False, capture_output=True, text=True)
    if res.returncode == 0:
        res = subprocess.run([str(py), "-c", "import nannyml"], check=False,
                             capture_output=True, text=True)
    if res.returncode != 0:
        lines = [ln for ln in (res.stderr or res.stdout).splitlines()
                 if ln.strip() and not ln.startswith("WARNING: Location")]
        return None, "\n".join(lines[-15:])
    ok.write_text("ok\n")
    return py, ""


def run_nannyml(py: Path, p: dict[str, Path], repeats: int, engine: str) -> dict[str, Any]:
    cmd = [str(py), str(PEER), "nannyml", _script_args(p, engine, NML_METRICS)]
    return _repeat(cmd, p["base"], repeats, _last_json)


# --------------------------------------------------------------------------- the cross-check

def cross_check(results: dict[str, dict[str, Any]], reference: str = "mlgen") -> list[str]:
    """Raise Disagreement unless every contender's point values equal the reference's: each
    metric both computed within TOLERANCE, each count both report exactly. Returns what was
    compared, for the table's footnote."""
    base = results[reference]
    compared: list[str] = []
    problems: list[str] = []
    for name, r in results.items():
        if name == reference:
            continue
        for metric, value in r["metrics"].items():
            want = base["metrics"].get(metric)
            if want is None:
                continue
            if not abs(float(value) - float(want)) <= TOLERANCE:
                problems.append(f"{metric}: {reference} {want!r}, {name} {value!r}")
            compared.append(f"{name}:{metric}")
        for count, value in r["counts"].items():
            if count in base["counts"]:
                if int(value) != int(base["counts"][count]):
                    problems.append(f"{count}: {reference} {base['counts'][count]}, "
                                    f"{name} {value}")
                compared.append(f"{name}:{count}")
    if problems:
        raise Disagreement("the contenders disagree on the same data:\n  " +
                           "\n  ".join(problems))
    return compared


# -------------------------------------------------------------------------------- the report

def table(results: dict[str, dict[str, Any]], n_preds: int, n_labels: int) -> str:
    """Markdown; the ratios are the peer's median over this one's, wall and CPU."""
    peers = [("pandas + scikit-learn", "pandas+sklearn"), ("NannyML PerformanceCalculator",
                                                           "NannyML")]
    head = (f"| {n_preds:,} predictions x {n_labels:,} labels | wall s | CPU s | core s | "
            "peak RSS MB | " + " | ".join(f"{short} / this (wall, CPU)" for _, short in peers)
            + " |")
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        if "skipped" in r:
            lines.append(f"| {name} | not run: {r['skipped']} | | | | | |")
            continue
        ratios = []
        for peer, _ in peers:
            other = results.get(peer, {})
            ratios.append(f"{other['wall'] / r['wall']:.1f}x, {other['cpu'] / r['cpu']:.1f}x"
                          if "wall" in other else "")
        lines.append(f"| {name} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['core']:.2f} | "
                     f"{r['rss']:.0f} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--predictions", type=int, default=1_000_000)
    ap.add_argument("--labels", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nannyml-repeats", type=int, default=0,
                    help="Runs of NannyML (default: --repeats).")
    ap.add_argument("--skip-nannyml", action="store_true")
    ap.add_argument("--pandas-engine", default="pyarrow", choices=("pyarrow", "ujson"),
                    help="read_json's engine for both pandas peers (pyarrow: their fastest).")
    ap.add_argument("--quick", action="store_true", help="20k x 20k, one repeat.")
    ap.add_argument("--json-out", type=Path, help="Also write the results here.")
    ap.add_argument("--work", type=Path, default=WORK, help="Where the data goes.")
    ap.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.predictions, args.labels, args.repeats = 20_000, 20_000, 1
    if args.prepare_only:
        _prepare_here(args.predictions, args.labels, args.work.resolve())
        return 0
    p = prepare(args.predictions, args.labels, args.work.resolve())
    load_before = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    print("mlgen monitor ...", flush=True)
    results["mlgen"] = run_mlgen(p, args.repeats)
    print("pandas + scikit-learn ...", flush=True)
    results["pandas + scikit-learn"] = run_pandas(p, args.repeats, args.pandas_engine)
    if args.skip_nannyml:
        results["NannyML PerformanceCalculator"] = {"skipped": "--skip-nannyml"}
    else:
        py, error = ensure_nannyml()
        if py is None:
            print(f"NannyML did not install or import:\n{error}", flush=True)
            results["NannyML PerformanceCalculator"] = {
                "skipped": "did not install: " + (error.splitlines() or ["?"])[-1]}
        else:
            print("NannyML ...", flush=True)
            results["NannyML PerformanceCalculator"] = run_nannyml(
                py, p, args.nannyml_repeats or args.repeats, args.pandas_engine)
    load_after = os.getloadavg()
    ran = {k: v for k, v in results.items() if "skipped" not in v}
    try:
        compared = cross_check(ran)
    except Disagreement as exc:
        print(json.dumps(results, indent=2))
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    doc = {"predictions": args.predictions, "labels": args.labels, "repeats": args.repeats,
           "nannyml_repeats": args.nannyml_repeats or args.repeats,
           "pandas_engine": args.pandas_engine, "cores": os.cpu_count(),
           "load_average": {"before": load_before, "after": load_after},
           "results": results, "agree": True, "compared": len(compared)}
    print(json.dumps(doc, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nmedian of {args.repeats} runs (NannyML: {doc['nannyml_repeats']}), whole process; "
          f"{os.cpu_count()} cores shared with other jobs, load average {load_before[0]:.1f} "
          f"before, {load_after[0]:.1f} after (1-min); point values agree "
          f"({len(compared)} metric/count comparisons, metrics within {TOLERANCE:g})\n")
    print(table(results, args.predictions, args.labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
