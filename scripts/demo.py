"""`make demo`: the main job on the bundled example, no Jenkins, GitHub or cluster needed.

1. `mlgen init` a fresh model repository in demo/ and show the files it wrote;
2. train it and gate it (`mlgen run data`, `mlgen run train`, `mlgen gate`);
3. render the bundled example examples/credit-risk and show that its committed pipeline
   files are exactly what mlgen renders (`mlgen render --diff` prints nothing);
4. change the spec (a new port) and show the diff `mlgen render --diff` would apply.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo"
MLGEN = [sys.executable, "-m", "mlgen"]


def step(title: str, *args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess[str]:
    print(f"\n$ mlgen {' '.join(args)}    # {title}", flush=True)
    result = subprocess.run([*MLGEN, *args], cwd=cwd, text=True, capture_output=True)
    print((result.stdout + result.stderr).rstrip())
    if check and result.returncode != 0:
        sys.exit(f"demo step failed (exit {result.returncode}): mlgen {' '.join(args)}")
    return result


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    step("scaffold a model repository", "init", "--non-interactive", "--name", "credit-risk",
         "--description", "Probability of default (demo)", str(DEMO))
    print("\nFiles in demo/:")
    for path in sorted(p for p in DEMO.rglob("*") if p.is_file()):
        print("  ", path.relative_to(DEMO))
    step("make the synthetic training data", "-C", str(DEMO), "run", "data")
    step("train the model", "-C", str(DEMO), "run", "train")
    step("check it against the spec's thresholds", "-C", str(DEMO), "gate",
         "--report-dir", str(DEMO / "reports" / "gate"))
    example = ROOT / "examples" / "credit-risk"
    diff = step("the bundled example is in sync with its spec", "-C", str(example), "render", "--diff")
    if diff.stdout.strip():
        sys.exit("examples/credit-risk is out of date: run `make golden`")
    print("(no diff: the committed files are exactly what mlgen renders)")
    spec = DEMO / "mlgen.yaml"
    spec.write_text(spec.read_text().replace("port: 8080", "port: 9090"))
    step("what a spec change would do", "-C", str(DEMO), "render", "--diff")
    print("\nDone. Try: .venv/bin/mlgen -C demo serve   (then curl localhost:9090/v2/health/ready)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
