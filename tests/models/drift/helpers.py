"""Synthetic windows for the drift tests: 25 numeric + 5 categorical features by default."""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

CATS = ["retail", "salaried", "self", "public", "other"]


def frame(rng: np.random.Generator, rows: int, *, numeric: int = 25, categorical: int = 5,
          shifted: Iterable[str] = (), shift: float = 0.5) -> pd.DataFrame:
    """Normal numeric features (some with a mean shift of `shift` std), skewed categories."""
    shifted = set(shifted)
    cols: dict[str, object] = {}
    for i in range(numeric):
        name = f"num{i:02d}"
        cols[name] = rng.normal(shift if name in shifted else 0.0, 1.0, rows) * (1 + i) + 10 * i
    probs = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
    for j in range(categorical):
        name = f"cat{j}"
        p = probs[::-1] if name in shifted else probs
        cols[name] = rng.choice(CATS, size=rows, p=p)
    return pd.DataFrame(cols)


def names(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    return ([c for c in df.columns if c.startswith("num")],
            [c for c in df.columns if c.startswith("cat")])


def write_request_log(df: pd.DataFrame, folder: Path, *, ts: str = "2030-01-01T00:00:00Z",
                      model: str = "demo") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "requests.jsonl"
    with path.open("a", encoding="utf-8") as fh:
        for row in df.to_dict("records"):
            fh.write(
                json.dumps({"ts": ts, "model": model, "features": row, "prediction": 0}) + "\n"
            )
    return path


SHIFTED = ("num00", "num01", "cat0")  # what write_drifted_window moves: half the features


def write_drifted_window(root: Path, logs: Path, *, model: str, ts: str
                         ) -> tuple[list[str], list[str]]:
    """What the drift job finds in a model repository: a reference profile at drift.reference's
    default (artifacts/reference_profile.json) and, in the request log `logs`, 3000 rows logged
    at `ts` whose SHIFTED features moved by one standard deviation. Returns the feature names
    (numeric, categorical) for the spec."""
    from mlgen.models.profile import write_profile

    ref = frame(np.random.default_rng(11), 4_000, numeric=4, categorical=2)
    numeric, categorical = names(ref)
    write_profile(ref, root / "artifacts" / "reference_profile.json", numeric=numeric,
                  categorical=categorical, model=model)
    cur = frame(np.random.default_rng(12), 3_000, numeric=4, categorical=2, shifted=SHIFTED,
                shift=1.0)
    write_request_log(cur, logs, ts=ts, model=model)
    return numeric, categorical
