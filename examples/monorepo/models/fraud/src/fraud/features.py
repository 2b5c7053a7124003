"""Feature engineering and the estimator, as one scikit-learn Pipeline.

The whole Pipeline is what `train.py` fits and saves, and what `mlgen serve` loads: the server
sends raw feature values (named as in mlgen.yaml `model.features`) and the Pipeline does the rest,
so training and serving cannot disagree about preprocessing.

Keep to scikit-learn's own classes here (or move custom ones into a package the image installs):
the artifact is a pickle, and the server must be able to import every class it names.
"""
from __future__ import annotations

from collections.abc import Sequence

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def build_features(numeric: Sequence[str], categorical: Sequence[str]) -> ColumnTransformer:
    """Numeric: median imputation then scaling. Categorical: most frequent value, then one-hot.

    `handle_unknown="ignore"` encodes a category never seen in training as all zeros instead of
    failing the request; the drift job reports such categories separately.
    """
    numeric_steps = Pipeline([
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
    ])
    categorical_steps = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ])
    return ColumnTransformer(
        [("numeric", numeric_steps, list(numeric)),
         ("categorical", categorical_steps, list(categorical))],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def build_pipeline(numeric: Sequence[str], categorical: Sequence[str]) -> Pipeline:
    """The features, then the model. Change the estimator here; train.py needs no edit."""
    # A linear model is a strong, explainable baseline for credit scoring, has well-calibrated
    # probabilities (the brier gate) and predicts one row in microseconds.
    estimator = LogisticRegression(C=1.0, max_iter=1000)
    return Pipeline([("features", build_features(numeric, categorical)), ("model", estimator)])
