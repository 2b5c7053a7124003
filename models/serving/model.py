"""Loading the joblib artifact, noticing when it changes, and calling it on a batch.

At start-up a missing or broken artifact is fatal (server.load_startup_model, exit 2 with one line
naming the file): a server that listens without a model only ever answers 503, and a pod that
exits instead shows up as CrashLoopBackOff where someone will look. Once a model serves, the
file is polled: a changed artifact is loaded and swapped in, and one that is missing or broken
is logged while the previous model keeps serving.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.base import is_classifier

log = logging.getLogger("mlgen.serve")


def configure_sklearn() -> None:
    """Per thread (sklearn's config is thread-local). Finite-ness is checked by our own
    validation (inf refused, NaN means missing); skipping sklearn's repeated checks on every
    step saves a measurable part of a small batch's cost."""
    sklearn.set_config(assume_finite=True)


@dataclass(frozen=True)
class LoadedModel:
    pipeline: Any
    version: str  # "sha256:<12 hex>" of the artifact's bytes
    classifier: bool
    classes: tuple[Any, ...] | None
    column_order: tuple[str, ...]  # the order the pipeline was fitted with
    categorical: frozenset[str]


@dataclass
class Prediction:
    """Per row: the prediction, class probabilities, and what the metrics count."""

    predictions: list[Any]
    probabilities: list[list[float]] | None
    class_indexes: list[int] | None
    scores: list[float] | None


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ModelHolder:
    """The current model of one worker (None until one loads) and why it is not ready."""

    def __init__(self, path: Path, numeric: tuple[str, ...], categorical: tuple[str, ...],
                 task: str | None) -> None:
        self.path = path
        self.numeric = numeric
        self.categorical = categorical
        self.task = task
        self.model: LoadedModel | None = None
        self.reason = "model not loaded yet"
        self._seen: tuple[int, int, int] | None = None
        self._reported: str | None = None

    def changed(self) -> bool:
        """True when the artifact's file differs from the one last tried (cheap: one stat)."""
        sig = _signature(self.path)
        if sig is None:
            if self.model is None:
                self._report(f"model artifact {self.path} does not exist yet; readiness stays "
                             "false (503) and the file is polled until it appears", warn=True)
            self._seen = None
            return False
        return sig != self._seen

    def load(self) -> tuple[LoadedModel | None, str | None]:
        """Try to load the artifact; returns (model, None) or (None, reason). Thread-safe: no state.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None, f"model artifact {self.path} does not exist"
        except OSError as exc:
            return None, f"cannot read model artifact {self.path}: {exc.strerror or exc}"
        try:
            pipeline = joblib.load(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - any unpickling error means "corrupt"
            return None, (f"model artifact {self.path} is corrupt or not a joblib file "
                          f"({type(exc).__name__}: {exc})")
        if not hasattr(pipeline, "predict"):
            return (
                None,
                f"model artifact {self.path} holds a {type(pipeline).__name__}, not an estimator",
            )
        expected = set(self.numeric) | set(self.categorical)
        names = getattr(pipeline, "feature_names_in_", None)
        order = (
            tuple(str(n) for n in names)
            if names is not None
            else (*self.numeric, *self.categorical)
        )
        if names is not None and set(order) != expected:
            return None, (
                f"model artifact {self.path} was trained on features {sorted(order)} but the "
                f"server is configured with {sorted(expected)}"
            )
        classifier = is_classifier(pipeline) if self.task is None else self.task == "classification"
        # tolist(): numpy scalars (int64 labels) are not JSON-serialisable.
        classes = (
            tuple(np.asarray(getattr(pipeline, "classes_", ())).tolist()) if classifier else None
        )
        model = LoadedModel(pipeline, "sha256:" + hashlib.sha256(data).hexdigest()[:12],
                            classifier, classes or None, order, frozenset(self.categorical))
        try:  # a warm-up row: catches a model that loads but cannot predict, and warms caches
            self.predict(
                model,
                {**{n: [0.0] for n in self.numeric}, **{c: [None] for c in self.categorical}},
                1,
            )
        except Exception as exc:  # noqa: BLE001
            return None, (
                f"model artifact {self.path} loaded but cannot predict one row "
                f"({type(exc).__name__}: {exc})"
            )
        return model, None

    def install(
        self, model: LoadedModel | None, reason: str | None, signature: tuple[int, int, int] | None
    ) -> None:
        self._seen = signature
        if model is not None:
            old = self.model
            self.model = model
            self.reason = ""
            self._reported = None
            log.info("model %s loaded from %s (%s)%s", model.version, self.path,
                     "classifier" if model.classifier else "regressor",
                     f", replacing {old.version}" if old else "")
        else:
            if reason is None:
                raise RuntimeError("a model load failed without a reason")
            if self.model is None:
                reason += "; readiness stays false until it is replaced"
                self.reason = reason
                self._report(reason, warn=False)
            else:
                log.error("%s; still serving the previous model %s", reason, self.model.version)

    def signature(self) -> tuple[int, int, int] | None:
        return _signature(self.path)

    def _report(self, message: str, warn: bool) -> None:
        self.reason = message
        if message != self._reported:  # once per distinct problem, not once per poll
            (log.warning if warn else log.error)("%s", message)
            self._reported = message

    @staticmethod
    def predict(model: LoadedModel, columns: dict[str, list[Any]], rows: int) -> Prediction:
        frame = {}
        for name in model.column_order:
            values = columns[name]
            if name in model.categorical:
                arr = np.array(values, dtype=object)
                arr[arr == None] = np.nan
            else:
                arr = np.array(values, dtype=np.float64)
            frame[name] = arr
        x = pd.DataFrame(frame)
        pipeline = model.pipeline
        steps = getattr(pipeline, "steps", None)
        if steps and len(steps) > 1:  # transform once, then both predict and predict_proba
            xt = pipeline[:-1].transform(x)
            estimator = steps[-1][1]
        else:
            xt, estimator = x, pipeline
        raw = estimator.predict(xt)
        predictions = raw.tolist()
        if not model.classifier:
            return Prediction(predictions, None, None, [float(v) for v in predictions])
        proba = estimator.predict_proba(xt) if hasattr(estimator, "predict_proba") else None
        classes = model.classes or ()
        index = {c: i for i, c in enumerate(classes)}
        class_indexes = [index.get(p, len(classes)) for p in predictions]
        scores: list[float] | None = None
        if proba is not None:
            if proba.shape[1] == 2:
                scores = proba[:, 1].tolist()
            else:
                scores = proba.max(axis=1).tolist()
        return Prediction(predictions, proba.tolist() if proba is not None else None,
                          class_indexes, scores)
