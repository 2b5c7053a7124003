"""A synthetic training set for rent, made with numpy: no download, same rows every run.

House sales: living area, rooms, building age, distance to the centre, district and property
type, and the sale price (`price`). The price is mostly linear in the
features with district and type premiums and a noise term of 30,000, so a linear model
explains most of the variance but no model can be exact. A few values are left missing on
purpose: the feature pipeline must impute them, as it will have to in production.

Replace `generate` with your real data loading when you have it; keep writing the file named by
`model.data.train` in mlgen.yaml, which is what `train.py` reads.

    python -m rent.data [--rows N] [--seed S] [--output PATH]   (or: mlgen run data)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_ROWS = 5_000
SEED = 42
TARGET = "price"


def generate(rows: int = DEFAULT_ROWS, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    district = rng.choice(["centre", "riverside", "old_town", "suburbs", "outskirts"],
                          size=rows, p=[0.15, 0.15, 0.15, 0.35, 0.20])
    property_type = rng.choice(["apartment", "terraced", "semi_detached", "detached"],
                               size=rows, p=[0.40, 0.25, 0.20, 0.15])
    base_area = pd.Series(property_type).map(
        {"apartment": 70, "terraced": 100, "semi_detached": 125, "detached": 170}).to_numpy()
    living_area = np.clip(rng.normal(base_area, base_area * 0.25), 20, 500)
    rooms = np.clip(np.round(living_area / 28 + rng.normal(0, 0.7, rows)), 1, 12)
    building_age = rng.integers(0, 121, rows)
    mean_distance = pd.Series(district).map(
        {"centre": 1.0, "riverside": 3.0, "old_town": 2.0, "suburbs": 8.0, "outskirts": 18.0})
    distance_km = rng.gamma(4.0, mean_distance.to_numpy() / 4.0)
    district_premium = pd.Series(district).map(
        {"centre": 90_000, "riverside": 60_000, "old_town": 45_000, "suburbs": 0,
         "outskirts": -30_000}).to_numpy()
    type_premium = pd.Series(property_type).map(
        {"apartment": 0, "terraced": 15_000, "semi_detached": 30_000, "detached": 60_000}).to_numpy()
    price = (60_000 + 2_400 * living_area + 6_000 * rooms - 600 * building_age
             - 3_000 * distance_km + district_premium + type_premium
             + rng.normal(0, 30_000, rows))
    frame = pd.DataFrame({
        "living_area": np.round(living_area, 1),
        "rooms": rooms,
        "building_age": building_age.astype(float),
        "distance_km": np.round(distance_km, 2),
        "district": district.astype(object),
        "property_type": property_type.astype(object),
        TARGET: np.round(np.clip(price, 30_000, None), -2),
    })
    # Missing values, as real listings have them.
    frame.loc[rng.random(rows) < 0.03, "building_age"] = np.nan
    frame.loc[rng.random(rows) < 0.01, "property_type"] = np.nan
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
