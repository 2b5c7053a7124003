"""The feature pipeline: imputation, scaling, one-hot encoding that tolerates new categories."""
from __future__ import annotations

import numpy as np
import pandas as pd
from fraud.data import generate
from fraud.features import build_features, build_pipeline


def test_data_generator_is_deterministic_and_has_the_spec_columns(settings) -> None:
    first, second = generate(200, seed=7), generate(200, seed=7)
    pd.testing.assert_frame_equal(first, second)
    assert set(settings.features) | {settings.target} <= set(first.columns)
    assert not generate(200, seed=8).equals(first)


def test_features_impute_scale_and_encode(settings) -> None:
    frame = generate(400)
    x = frame[list(settings.features)]
    assert x.isna().any().any(), "the generator leaves some values missing on purpose"
    transformer = build_features(settings.numeric, settings.categorical).fit(x)
    out = transformer.transform(x)
    assert not np.isnan(out).any()
    numeric_part = out[:, :len(settings.numeric)]
    assert np.allclose(numeric_part.mean(axis=0), 0.0, atol=1e-6)
    onehot = out[:, len(settings.numeric):]
    assert set(np.unique(onehot)) <= {0.0, 1.0}
    # One active column per categorical feature on every row.
    assert np.allclose(onehot.sum(axis=1), len(settings.categorical))


def test_unseen_and_missing_categories_do_not_fail(settings) -> None:
    frame = generate(300)
    x = frame[list(settings.features)]
    transformer = build_features(settings.numeric, settings.categorical).fit(x)
    row = x.iloc[[0]].copy()
    for name in settings.categorical:
        row[name] = "never-seen-in-training"
    out = transformer.transform(row)
    assert np.allclose(out[:, len(settings.numeric):], 0.0), "unknown categories encode as zeros"
    row[list(settings.numeric)] = np.nan
    row[list(settings.categorical)] = np.nan
    assert not np.isnan(transformer.transform(row)).any()


def test_pipeline_ends_with_an_estimator(settings) -> None:
    pipeline = build_pipeline(settings.numeric, settings.categorical)
    assert [name for name, _ in pipeline.steps] == ["features", "model"]
    assert hasattr(pipeline.steps[-1][1], "fit")
