"""A training smoke test on a small table: every output is written and predictions make sense."""
from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
from mlgen.models.profile import load_profile
from rent.data import generate


def test_training_writes_model_metrics_profile_and_card(trained) -> None:
    s = trained.settings
    assert s.at(s.data).exists(), "the data is generated when it is missing"
    metrics = json.loads(s.at(s.metrics_file).read_text())
    assert set(metrics) == {"rmse", "mae", "r2"}
    assert metrics["r2"] > 0.5
    assert 0 < metrics["mae"] <= metrics["rmse"]
    assert trained.rows_train + trained.rows_test == len(pd.read_csv(s.at(s.data)))
    profile = load_profile(s.at(s.reference))
    assert set(profile.features) == set(s.features)
    card = s.at(s.model_card).read_text()
    assert trained.data_sha256 in card and "## Metrics" in card


def test_predictions_are_in_range(trained) -> None:
    s = trained.settings
    model = joblib.load(s.at(s.artifact))
    x = generate(200, seed=123)[list(s.features)]
    predicted = model.predict(x)
    assert predicted.shape == (200,)
    assert np.all(np.isfinite(predicted))
    # Within a generous band around the prices the model was trained on.
    assert 0 < np.median(predicted) < 2_000_000


def test_the_saved_pipeline_takes_the_features_by_name(trained) -> None:
    s = trained.settings
    model = joblib.load(s.at(s.artifact))
    assert list(model.feature_names_in_) == list(s.features)
