"""A small credit-like model for the server tests: numpy-made data, the scaffold's pipeline
shape."""

from __future__ import annotations

from pathlib import Path

NUMERIC = ("income", "age", "debt_ratio", "credit_lines")
CATEGORICAL = ("employment_type", "region")


def train_model(path: Path, task: str = "classification", rows: int = 600, seed: int = 0) -> Path:
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.lognormal(10, 0.5, rows),
        "age": rng.integers(18, 80, rows).astype(float),
        "debt_ratio": rng.uniform(0, 1, rows),
        "credit_lines": rng.poisson(3, rows).astype(float),
        "employment_type": rng.choice(["salaried", "self_employed", "unemployed"], rows),
        "region": rng.choice(["north", "south", "east", "west"], rows),
    })
    signal = (
        2.5 * frame["debt_ratio"]
        + (frame["employment_type"] == "unemployed")
        + rng.normal(0, 0.4, rows)
    )
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(NUMERIC)),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), list(CATEGORICAL)),
    ])
    if task == "classification":
        model = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))])
        model.fit(frame, (signal > 1.6).astype(int))
    else:
        model = Pipeline([("pre", pre), ("reg", LinearRegression())])
        model.fit(frame, 1000 * signal)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path
