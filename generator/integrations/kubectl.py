"""kubectl, the one subprocess mlgen drives on a cluster's behalf: `kubectl kustomize` builds an
environment's overlay (the kubernetes client then applies it). MLGEN_KUBECTL picks the binary."""
from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import MlgenError


class Kubectl:
    """Runs kubectl (MLGEN_KUBECTL or the one on PATH) and turns failures into clean errors."""

    def __init__(self, binary: str | None = None, context: str | None = None) -> None:
        name = binary or os.environ.get("MLGEN_KUBECTL") or "kubectl"
        found = shutil.which(name)
        if not found:
            raise MlgenError(f"kubectl not found ({name}); install it or set MLGEN_KUBECTL")
        self.binary = found
        self.context = context

    def run(self, *args: str, stdin: str | None = None, timeout: float = 900) -> str:
        argv = [self.binary, *(["--context", self.context] if self.context else []), *args]
        try:
            out = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                 timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise MlgenError(
                f"kubectl {' '.join(args[:2])} timed out after {timeout:.0f}s"
            ) from exc
        if out.returncode != 0:
            detail = (out.stderr or out.stdout).strip()
            raise MlgenError(
                f"kubectl {' '.join(args[:2])} failed (exit {out.returncode}): {detail}"
            )
        return out.stdout
