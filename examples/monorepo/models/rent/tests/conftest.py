"""Shared fixtures: the project's settings from mlgen.yaml, and one small training run.

The training run writes into a temporary folder (the project's own data/ and artifacts/ are
not touched) and is shared by the tests that only read its outputs, to keep the suite fast.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from mlgen.models.train_helpers import TrainResult, TrainSettings, load_settings, train
from rent.data import write_dataset
from rent.features import build_pipeline

PROJECT = Path(__file__).resolve().parents[1]
SMALL_ROWS = 600  # enough for stable metrics, small enough to keep the suite fast


@pytest.fixture(scope="session")
def settings() -> TrainSettings:
    return load_settings(PROJECT)


@pytest.fixture(scope="session")
def trained(settings: TrainSettings, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """One training run on SMALL_ROWS generated rows, with every output under a temp folder."""
    moved = replace(settings, root=tmp_path_factory.mktemp("training"))
    return train(moved, build_pipeline, make_data=partial(write_dataset, rows=SMALL_ROWS))
