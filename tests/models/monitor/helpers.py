"""Synthetic request logs and labels with a known truth (shared by the tests and the bench)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def write_log(folder: Path, n: int, *, seed: int = 0, flip_share: float = 0.0,
              days: int = 7, model: str = "credit") -> dict[str, np.ndarray]:
    """requests.jsonl with n binary-classifier predictions over `days` before NOW, and
    labels.jsonl with a label for each; the labels agree with a score-calibrated truth, except
    that `flip_share` of the newest rows (a planted segment) get the opposite label."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    score = rng.random(n)
    truth = rng.random(n) < score  # calibrated: P(y=1) = score
    offsets = np.sort(rng.uniform(0, days * 86400 - 60, n))[::-1]
    if flip_share:
        newest = offsets < flip_share * days * 86400
        truth = np.where(newest, ~truth, truth)
    base = NOW.replace(tzinfo=None)
    with open(folder / "requests.jsonl", "w") as log, open(folder / "labels.jsonl", "w") as lab:
        for i in range(n):
            ts = (base - timedelta(seconds=float(offsets[i]))).isoformat(timespec="milliseconds")
            rid = f"r{i:08d}"
            log.write(json.dumps({"ts": ts + "Z", "model": model, "id": rid,
                                  "features": {"x": float(score[i])},
                                  "prediction": int(score[i] >= 0.5),
                                  "score": float(score[i])}) + "\n")
            lab.write(json.dumps({"id": rid, "label": int(truth[i]),
                                  "labelled_at": ts + "Z"}) + "\n")
    return {"score": score, "truth": truth, "prediction": score >= 0.5}
