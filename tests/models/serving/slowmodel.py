"""A wrapper whose predict blocks on a marked row: lets a test hold a request in flight."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


class SlowModel:
    """Delegates to a fitted pipeline; a row with age == 999 sleeps `delay` s after touching a
    marker."""

    def __init__(self, inner: Any, marker: str, delay: float) -> None:
        self.inner = inner
        self.marker = marker
        self.delay = delay
        self.classes_ = inner.classes_
        self.feature_names_in_ = inner.feature_names_in_

    def _maybe_wait(self, x: Any) -> None:
        if (x["age"] == 999).any():
            Path(self.marker).write_text(str(os.getpid()))
            time.sleep(self.delay)

    def predict(self, x: Any) -> Any:
        self._maybe_wait(x)
        return self.inner.predict(x)

    def predict_proba(self, x: Any) -> Any:
        return self.inner.predict_proba(x)
