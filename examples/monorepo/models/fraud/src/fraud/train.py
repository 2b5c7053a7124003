"""Train fraud: `mlgen run train` (or `PYTHONPATH=src python -m fraud.train`).

Reads `model.data.train` (generating it with `fraud.data` when it is missing), splits off
a test set, fits `features.build_pipeline`, and writes, at the paths mlgen.yaml names:
  - the model artifact (`model.artifact`, joblib), which `mlgen serve` loads;
  - the test-set metrics (`model.metrics_file`), which `mlgen gate` checks;
  - the reference profile (`drift.reference`), which the drift job compares traffic against;
  - a model card beside the artifact (data hash, code revision, metrics, features, parameters).

The steps every model repository shares live in `mlgen.models.train_helpers`; this project
keeps what is specific to it: the data (`data.py`) and the pipeline (`features.py`).
"""
from __future__ import annotations

from collections.abc import Sequence

from mlgen.models.train_helpers import train_main

from .data import write_dataset
from .features import build_pipeline


def main(argv: Sequence[str] | None = None) -> int:
    return train_main(build_pipeline, make_data=write_dataset, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
