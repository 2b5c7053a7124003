"""mlgen.models.train_helpers on its own: metrics, input errors, provenance, determinism."""
from __future__ import annotations

import json
import math
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

np = pytest.importorskip("numpy", reason="the training helpers need mlgen[runtime]")
pd = pytest.importorskip("pandas", reason="the training helpers need mlgen[runtime]")
pytest.importorskip("sklearn", reason="the training helpers need mlgen[runtime]")

from mlgen.models import train_helpers as th

NUMERIC = ("x1", "x2")
CATEGORICAL = ("colour",)


def build_pipeline(numeric, categorical):  # type: ignore[no-untyped-def]
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer([
        ("n", make_pipeline(SimpleImputer(), StandardScaler()), list(numeric)),
        ("c", make_pipeline(SimpleImputer(strategy="most_frequent"),
                            OneHotEncoder(handle_unknown="ignore")), list(categorical)),
    ])
    return Pipeline([("features", features), ("model", LogisticRegression())])


def write_data(path: Path, rows: int = 300, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    y = (x1 + 0.5 * (colour == "red") + rng.normal(0, 0.7, rows) > 0).astype(int)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "label": y})
    frame.loc[::17, "x2"] = np.nan
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> th.TrainSettings:
    return th.TrainSettings(name="toy", task="classification", numeric=NUMERIC,
                            categorical=CATEGORICAL, target="label", root=tmp_path)


def test_classification_metrics_agree_with_sklearn() -> None:
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

    y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    p1 = np.array([0.1, 0.8, 0.6, 0.4, 0.3, 0.2, 0.9, 0.55])
    got = th.classification_metrics(y, np.column_stack([1 - p1, p1]), [0, 1])
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p1))
    assert got["brier"] == pytest.approx(brier_score_loss(y, p1))
    assert got["log_loss"] == pytest.approx(log_loss(y, p1))
    assert got["accuracy"] == pytest.approx(accuracy_score(y, (p1 > 0.5).astype(int)))


def test_classification_metrics_with_string_labels() -> None:
    y = np.array(["no", "yes", "yes", "no"], dtype=object)
    got = th.classification_metrics(y, np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]),
                                    ["no", "yes"])
    assert got["accuracy"] == pytest.approx(0.75) and got["roc_auc"] == pytest.approx(1.0)


def test_regression_metrics() -> None:
    got = th.regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 6.0])
    assert got["rmse"] == pytest.approx(1.0) and got["mae"] == pytest.approx(0.5)
    assert got["r2"] == pytest.approx(1 - 4 / 5)


def test_training_writes_every_output_and_is_deterministic(settings: th.TrainSettings,
                                                          tmp_path: Path) -> None:
    first = th.train(settings, build_pipeline, make_data=write_data)
    other = replace(settings, root=tmp_path / "again")
    second = th.train(other, build_pipeline, make_data=write_data)
    assert first.metrics == second.metrics
    assert first.data_sha256 == second.data_sha256
    metrics = json.loads(settings.at(settings.metrics_file).read_text())
    assert set(metrics) == {"roc_auc", "brier", "accuracy", "log_loss"}
    assert all(math.isfinite(v) for v in metrics.values())
    assert first.rows_train == 240 and first.rows_test == 60
    profile = json.loads(settings.at(settings.reference).read_text())
    assert set(profile["features"]) == {"x1", "x2", "colour"} and profile["model"] == "toy"
    card = settings.at("artifacts/model_card.md").read_text()
    for needle in (first.data_sha256, first.model_sha256, "| colour | categorical |",
                   "LogisticRegression", "| roc_auc |"):
        assert needle in card


def test_missing_data_file_names_the_file_and_the_fix(settings: th.TrainSettings) -> None:
    with pytest.raises(
        th.TrainingError, match=r"data/train\.csv: training data not found.*mlgen run data"
    ):
        th.train(settings, build_pipeline)


def test_missing_column_is_named(settings: th.TrainSettings) -> None:
    path = write_data(settings.at(settings.data))
    pd.read_csv(path).drop(columns=["colour"]).to_csv(path, index=False)
    with pytest.raises(th.TrainingError, match=r"no column\(s\) colour") as info:
        th.train(settings, build_pipeline)
    assert info.value.exit_code == 2


def test_a_single_class_is_refused(settings: th.TrainSettings) -> None:
    path = write_data(settings.at(settings.data))
    frame = pd.read_csv(path)
    frame["label"] = 1
    frame.to_csv(path, index=False)
    with pytest.raises(th.TrainingError, match="single class"):
        th.train(settings, build_pipeline)


def test_train_main_reports_bad_input_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mlgen.yaml").write_text(
        "apiVersion: mlgen/v1\nname: toy\nmodel:\n  data: {train: data/t.csv, target: label}\n"
        "  features: {numeric: [x1, x2], categorical: [colour]}\n")
    assert th.train_main(build_pipeline, argv=["--root", str(tmp_path)]) == 2
    assert "data/t.csv: training data not found" in capsys.readouterr().err
    write_data(tmp_path / "data/t.csv")
    assert th.train_main(build_pipeline, argv=["--root", str(tmp_path)]) == 0
    assert "roc_auc=" in capsys.readouterr().out


def test_code_revision_comes_from_git_and_marks_uncommitted_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no repo above tmp_path
    monkeypatch.delenv("GIT_COMMIT", raising=False)
    assert th.code_revision(tmp_path) == "unknown"
    monkeypatch.setenv("GIT_COMMIT", "abc123")  # a CI agent without .git still knows the commit
    assert th.code_revision(tmp_path) == "abc123"

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("x = 1\n")
    git("add", "src")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "m")
    head = git("rev-parse", "HEAD")
    assert th.code_revision(tmp_path) == head
    (tmp_path / "src" / "m.py").write_text("x = 2\n")
    assert th.code_revision(tmp_path) == f"{head} (with uncommitted changes in src/)"
