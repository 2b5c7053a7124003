"""A synthetic training set for fraud, made with numpy: no download, same rows every run.

Credit-like applicants: income, age, debt ratio, open credit lines, employment type and region,
and whether the loan defaulted (`default`, 1 = default). The default
probability is a logistic function of the features plus noise, so a good model reaches a ROC AUC
of about 0.8 and none can reach 1.0. A few values are left missing on purpose: the feature
pipeline must impute them, as it will have to in production.

Replace `generate` with your real data loading when you have it; keep writing the file named by
`model.data.train` in mlgen.yaml, which is what `train.py` reads.

    python -m fraud.data [--rows N] [--seed S] [--output PATH]   (or: mlgen run data)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_ROWS = 5_000
SEED = 42
TARGET = "default"


def generate(rows: int = DEFAULT_ROWS, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(21, 76, rows)
    employment_type = rng.choice(
        ["salaried", "self_employed", "contractor", "unemployed", "retired"],
        size=rows, p=[0.55, 0.15, 0.12, 0.08, 0.10])
    region = rng.choice(["north", "south", "east", "west", "central"],
                        size=rows, p=[0.22, 0.25, 0.18, 0.15, 0.20])
    income_factor = np.select(
        [employment_type == "unemployed", employment_type == "retired"], [0.35, 0.6], 1.0)
    income = rng.lognormal(mean=10.5 + 0.008 * (age - 40), sigma=0.45, size=rows) * income_factor
    debt_ratio = np.clip(rng.beta(2.0, 5.0, rows) + rng.normal(0, 0.05, rows), 0.0, 1.5)
    credit_lines = rng.poisson(2 + (age - 21) / 12)
    region_risk = pd.Series(region).map(
        {"north": -0.1, "south": 0.3, "east": 0.1, "west": -0.2, "central": 0.0}).to_numpy()
    logit = (-1.6 + 4.0 * (debt_ratio - 0.3) - 1.1 * (np.log(income) - 10.3)
             + 1.0 * (employment_type == "unemployed")
             + 0.4 * np.isin(employment_type, ["self_employed", "contractor"])
             - 0.02 * (age - 40) + 0.1 * (credit_lines - 4) + region_risk
             + rng.normal(0, 0.5, rows))
    default = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({
        "income": np.round(income, 0),
        "age": age.astype(float),
        "debt_ratio": np.round(debt_ratio, 4),
        "credit_lines": credit_lines.astype(float),
        "employment_type": employment_type.astype(object),
        "region": region.astype(object),
        TARGET: default,
    })
    # Missing values, as real application forms have them.
    frame.loc[rng.random(rows) < 0.03, "income"] = np.nan
    frame.loc[rng.random(rows) < 0.01, "employment_type"] = np.nan
    return frame


def write_dataset(path: Path, rows: int = DEFAULT_ROWS, seed: int = SEED) -> Path:
    """Write the generated table as CSV at `path` (train.py calls this when the file is missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    generate(rows, seed).to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    from mlgen.models.train_helpers import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--output", type=Path, help="default: model.data.train in mlgen.yaml")
    args = parser.parse_args(argv)
    if args.rows < 20:
        parser.error("--rows must be at least 20")
    settings = load_settings()
    out = write_dataset(args.output or settings.at(settings.data), args.rows, args.seed)
    print(f"wrote {args.rows} rows to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
