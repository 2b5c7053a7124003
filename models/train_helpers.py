"""What a scaffolded project's `train.py` calls: read, split, fit, evaluate, and write the outputs.

The generated project keeps only what a data scientist edits (the data generator and the
feature pipeline); everything every model repository does the same way lives here, so fixing
it is a `pip install -U mlgen` rather than an edit in every repository:

  data file (generated if missing) -> split -> fit -> metrics on the held-out part
  -> model artifact (joblib) + metrics.json + reference profile (drift) + model card.

All paths come from mlgen.yaml (`model.artifact`, `model.metrics_file`, `model.data.train`,
`drift.reference`) and are relative to the project root, so tests relocate a whole training
run by changing `root` alone. Outputs are written atomically: CI never sees half a model.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlgen.errors import MlgenError, UsageError
from mlgen.models.profile import category_key

DEFAULT_TEST_SIZE = 0.2
DEFAULT_SEED = 42
# Beside the artifact; the generated CI archives artifacts/model_card.md.
CARD_NAME = "model_card.md"


class TrainingError(UsageError):
    """The training input is unusable (missing file, missing column, one class only): exit 2."""


@dataclass(frozen=True)
class TrainSettings:
    """One training run. Paths are relative to `root` (the project folder holding mlgen.yaml)."""

    name: str
    task: str  # "classification" | "regression"
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    data: str = "data/train.csv"
    artifact: str = "artifacts/model.joblib"
    metrics_file: str = "artifacts/metrics.json"
    reference: str = "artifacts/reference_profile.json"
    root: Path = Path(".")
    description: str = ""
    test_size: float = DEFAULT_TEST_SIZE
    seed: int = DEFAULT_SEED

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    @property
    def model_card(self) -> str:
        return str(Path(self.artifact).parent / CARD_NAME)

    def at(self, rel: str) -> Path:
        return self.root / rel


def load_settings(root: str | os.PathLike[str] = ".", **overrides: Any) -> TrainSettings:
    """Settings from `<root>/mlgen.yaml`; keyword arguments override single fields (tests do)."""
    from mlgen.models.contract import SPEC_FILENAME
    from mlgen.spec_loader import load_spec

    folder = Path(root)
    spec = load_spec(folder / SPEC_FILENAME)
    settings = TrainSettings(
        name=spec.name, task=spec.model.task, description=spec.description,
        numeric=tuple(spec.model.features.numeric),
        categorical=tuple(spec.model.features.categorical),
        target=spec.model.data.target, data=spec.model.data.train, artifact=spec.model.artifact,
        metrics_file=spec.model.metrics_file, reference=spec.drift.reference, root=folder,
    )
    return replace(settings, **overrides)


# --- reading and splitting -------------------------------------------------------------------


def read_training_data(settings: TrainSettings) -> Any:
    """The training table as a DataFrame holding exactly the features and the target."""
    import pandas as pd

    path = settings.at(settings.data)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise TrainingError(f"{path}: training data not found (model.data.train in mlgen.yaml); "
                            "run `mlgen run data` to generate it") from None
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{path}: cannot read the training data as CSV: {exc}") from exc
    wanted = [*settings.features, settings.target]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise TrainingError(
            f"{path}: no column(s) {', '.join(missing)} (named in mlgen.yaml model.features / "
            f"model.data.target); the file has: {', '.join(map(str, frame.columns))}")
    frame = frame[wanted]
    unlabelled = int(frame[settings.target].isna().sum())
    if unlabelled:
        frame = frame[frame[settings.target].notna()]  # rows without a label teach nothing
    if len(frame) < 20:
        raise TrainingError(f"{path}: only {len(frame)} labelled row(s); at least 20 are needed "
                            "to split off a test set")
    frame = frame.reset_index(drop=True)
    for name in settings.categorical:
        # Categories as strings ("3", not 3.0) the way the drift profile keys them; missing stays
        # NaN, which SimpleImputer recognises (None it would not).
        frame[name] = frame[name].map(category_key, na_action="ignore").astype(object)
    return frame


def split_data(frame: Any, settings: TrainSettings) -> tuple[Any, Any, Any, Any]:
    """Train/test split; stratified for classification so a rare class lands in both parts."""
    from sklearn.model_selection import train_test_split

    x = frame[list(settings.features)]
    y = frame[settings.target]
    stratify = None
    if settings.task == "classification":
        counts = y.value_counts()
        if len(counts) < 2:
            raise TrainingError(f"{settings.at(settings.data)}: the target '{settings.target}' has "
                                f"a single class ({counts.index[0]!r}); a classifier needs two")
        if counts.min() >= 2:
            stratify = y
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=settings.test_size, random_state=settings.seed, stratify=stratify)
    return x_train, x_test, y_train, y_test


# --- metrics ---------------------------------------------------------------------------------


def classification_metrics(y_true: Any, proba: Any, classes: Sequence[Any]) -> dict[str, float]:
    """roc_auc, brier, accuracy and log_loss from class probabilities (columns in `classes`
    order)."""
    import numpy as np
    from sklearn.metrics import log_loss, roc_auc_score

    labels = list(classes)
    index = {label: i for i, label in enumerate(labels)}
    y = np.asarray(y_true)
    y_index = np.array([index.get(v, -1) for v in y.tolist()])
    p = np.asarray(proba, dtype=float)
    onehot = np.zeros_like(p)
    known = y_index >= 0
    onehot[np.flatnonzero(known), y_index[known]] = 1.0
    if len(labels) == 2:
        auc = roc_auc_score(onehot[:, 1], p[:, 1])
        brier = float(np.mean((p[:, 1] - onehot[:, 1]) ** 2))
    else:
        auc = roc_auc_score(y, p, multi_class="ovr", labels=labels)
        brier = float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    return {
        "roc_auc": float(auc),
        "brier": brier,
        "accuracy": float(np.mean(p.argmax(axis=1) == y_index)),
        "log_loss": float(log_loss(y, p, labels=labels)),
    }


def regression_metrics(y_true: Any, predicted: Any) -> dict[str, float]:
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y, p = np.asarray(y_true, dtype=float), np.asarray(predicted, dtype=float)
    return {
        "rmse": float(math.sqrt(mean_squared_error(y, p))),
        "mae": float(mean_absolute_error(y, p)),
        "r2": float(r2_score(y, p)),
    }


def evaluate(model: Any, x: Any, y: Any, task: str) -> dict[str, float]:
    if task == "classification":
        return classification_metrics(y, model.predict_proba(x), list(model.classes_))
    return regression_metrics(y, model.predict(x))


# --- provenance ------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_revision(root: Path) -> str:
    """The git commit the code came from, marked when the work tree has uncommitted changes.

    Falls back to the CI's own variables (a shallow or missing .git in some agents), then "unknown".
    """
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False)
        if head.returncode == 0 and head.stdout.strip():
            status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                                    capture_output=True, text=True, timeout=10, check=False)
            dirty = " (with uncommitted changes in src/)" if status.stdout.strip() else ""
            return head.stdout.strip() + dirty
    except (OSError, subprocess.SubprocessError):
        pass
    for variable in ("GIT_COMMIT", "GITHUB_SHA"):
        if os.environ.get(variable):
            return os.environ[variable]
    return "unknown"


def estimator_params(model: Any) -> dict[str, Any]:
    """The final estimator's own parameters, JSON-safe (the card and the audit trail want them)."""
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    params = estimator.get_params(deep=False)
    return {k: v if isinstance(v, (bool, int, float, str, type(None))) else repr(v)
            for k, v in sorted(params.items())}


# --- writing ---------------------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)  # readers (the server's poller) see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, doc: Any) -> None:
    text = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"
    _atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def save_model(model: Any, path: Path) -> None:
    import joblib

    _atomic_write(path, lambda p: joblib.dump(model, p))


@dataclass(frozen=True)
class TrainResult:
    settings: TrainSettings
    metrics: Mapping[str, float]
    rows_train: int
    rows_test: int
    data_sha256: str
    model_sha256: str
    revision: str
    estimator: str
    params: Mapping[str, Any]
    missing_rates: Mapping[str, float] = field(default_factory=dict)
    trained_at: str = ""


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_model_card(result: TrainResult) -> str:
    s = result.settings
    import sklearn
    from mlgen import __version__

    lines = [f"# Model card: {s.name}", ""]
    if s.description:
        lines += [_md(s.description), ""]
    total = result.rows_train + result.rows_test
    lines += [
        "| | |", "| --- | --- |",
        f"| task | {s.task} |",
        f"| estimator | `{result.estimator}` |",
        f"| trained at | {result.trained_at} |",
        f"| code revision | `{_md(result.revision)}` |",
        f"| training data | `{_md(s.data)}`, {total} rows, sha256 `{result.data_sha256}` |",
        (f"| split | {result.rows_train} train / {result.rows_test} test "
        f"(test_size {s.test_size}, seed {s.seed}) |"),
        f"| model artifact | `{_md(s.artifact)}`, sha256 `{result.model_sha256}` |",
        f"| reference profile | `{_md(s.reference)}` |",
        (f"| versions | mlgen {__version__}, scikit-learn {sklearn.__version__}, "
        f"Python {sys.version.split()[0]} |"),
        "", f"## Metrics (held-out test set, {result.rows_test} rows)", "",
        "| metric | value |", "| --- | --- |",
        *(f"| {_md(k)} | {v:.6g} |" for k, v in sorted(result.metrics.items())),
        "", "## Features", "",
        "| feature | type | missing in training data |", "| --- | --- | --- |",
        *(f"| {_md(n)} | numeric | {result.missing_rates.get(n, 0.0):.1%} |" for n in s.numeric),
        *(f"| {_md(n)} | categorical | {result.missing_rates.get(n, 0.0):.1%} |"
          for n in s.categorical),
        "", f"Target: `{_md(s.target)}`.", "",
        "## Parameters", "", "| parameter | value |", "| --- | --- |",
        *(f"| {_md(k)} | `{_md(v)}` |" for k, v in result.params.items()),
        "",
    ]
    return "\n".join(lines)


# --- the whole run ---------------------------------------------------------------------------


def train(settings: TrainSettings,
          build_pipeline: Callable[[tuple[str, ...], tuple[str, ...]], Any],
          make_data: Callable[[Path], Any] | None = None) -> TrainResult:
    """Fit `build_pipeline(numeric, categorical)` on the data and write every output."""
    from mlgen.models.profile import write_profile

    data_path = settings.at(settings.data)
    if not data_path.exists() and make_data is not None:
        make_data(data_path)
    frame = read_training_data(settings)
    x_train, x_test, y_train, y_test = split_data(frame, settings)
    model = build_pipeline(settings.numeric, settings.categorical)
    model.fit(x_train, y_train)
    metrics = evaluate(model, x_test, y_test, settings.task)
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if bad:
        raise MlgenError(f"metric(s) {', '.join(bad)} are not finite on the test set; "
                         "check the data in " + str(data_path))
    artifact = settings.at(settings.artifact)
    save_model(model, artifact)
    write_json(settings.at(settings.metrics_file), {k: round(v, 10) for k, v in metrics.items()})
    # The drift reference is the whole table: the best estimate of what traffic should look like.
    write_profile(frame, settings.at(settings.reference), numeric=settings.numeric,
                  categorical=settings.categorical, model=settings.name, source=settings.data)
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    result = TrainResult(
        settings=settings, metrics=metrics, rows_train=len(x_train), rows_test=len(x_test),
        data_sha256=file_sha256(data_path), model_sha256=file_sha256(artifact),
        revision=code_revision(settings.root), estimator=type(estimator).__name__,
        params=estimator_params(model),
        missing_rates={n: float(frame[n].isna().mean()) for n in settings.features},
        trained_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    card = settings.at(settings.model_card)
    text = render_model_card(result)
    _atomic_write(card, lambda p: p.write_text(text, encoding="utf-8"))
    return result


def train_main(build_pipeline: Callable[[tuple[str, ...], tuple[str, ...]], Any],
               make_data: Callable[[Path], Any] | None = None,
               argv: Sequence[str] | None = None) -> int:
    """The command line of a generated `python -m <package>.train`."""
    parser = argparse.ArgumentParser(description="Train the model described by mlgen.yaml.")
    parser.add_argument("--root", default=".", help="project folder holding mlgen.yaml")
    parser.add_argument("--data", help="training CSV (default: model.data.train)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split seed")
    parser.add_argument("--test-size", type=float, default=DEFAULT_TEST_SIZE)
    args = parser.parse_args(argv)
    try:
        overrides: dict[str, Any] = {"seed": args.seed, "test_size": args.test_size}
        if args.data:
            overrides["data"] = args.data
        settings = load_settings(args.root, **overrides)
        result = train(settings, build_pipeline, make_data)
    except MlgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.metrics.items()))
    print(f"trained {settings.name} ({result.estimator}) on {result.rows_train} rows; "
          f"test ({result.rows_test} rows): {shown}")
    for rel in (settings.artifact, settings.metrics_file, settings.reference, settings.model_card):
        print(f"  wrote {rel}")
    return 0
