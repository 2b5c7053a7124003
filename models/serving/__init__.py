"""`mlgen serve`: a small, fast model server for a scikit-learn Pipeline saved with joblib.

It speaks the Open Inference Protocol (KServe V2) and a plain `POST /predict`, batches
concurrent requests into one model call, and runs several pre-forked worker processes on one
listening socket. Only `config` is light; everything else imports numpy/sklearn/uvloop and is
loaded by the server process, never by the CLI at start-up.
"""
from __future__ import annotations

from .config import ServeConfig

__all__ = ["ServeConfig"]
