"""The server's settings: one frozen value built by `mlgen serve` from flags and mlgen.yaml."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlgen.models import contract

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class RequestLogConfig:
    """Sampled request logging in the contract's JSON-lines format (read by the drift job)."""

    path: Path
    sample_rate: float = contract.REQUEST_LOG_SAMPLE_RATE
    max_bytes: int = contract.REQUEST_LOG_MAX_BYTES
    backups: int = contract.REQUEST_LOG_BACKUPS


@dataclass(frozen=True)
class ServeConfig:
    model_path: Path
    name: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    # None: ask the model (sklearn's is_classifier) once it is loaded.
    task: Task | None = None
    host: str = "0.0.0.0"
    port: int = contract.DEFAULT_PORT
    workers: int = 2
    max_batch_size: int = 32
    max_wait_ms: float = 2.0
    max_body_bytes: int = 1_048_576
    request_log: RequestLogConfig | None = None
    # How often a worker re-checks the artifact: picks up a model that appears or changes.
    poll_interval_s: float = 2.0
    # SIGTERM: stop accepting, answer what is in flight, then exit; bounded by this.
    graceful_timeout_s: float = 25.0
    # Idle keep-alive connections are closed after this, so a slow client cannot pin a worker.
    keepalive_timeout_s: float = 75.0
    # Where workers keep their shared-memory metric files; None: a fresh temporary folder.
    metrics_dir: Path | None = None
    # A shadow challenger's base URL (MLGEN_SHADOW_URL): answered prediction requests are
    # mirrored there (see shadow.py); None: no mirroring.
    shadow_url: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def problems(self) -> list[str]:
        """What is wrong with these settings, as messages naming the option."""
        out: list[str] = []
        if not self.features:
            out.append("no features: give --numeric/--categorical or a spec with model.features")
        dupes = sorted({f for f in self.features if self.features.count(f) > 1})
        if dupes:
            out.append(f"features listed twice: {', '.join(dupes)}")
        if not self.name:
            out.append("--name must not be empty")
        if not 0 <= self.port < 65536:  # 0: any free port (the log line says which)
            out.append(f"--port {self.port} is not a TCP port")
        if self.workers < 1:
            out.append("--workers must be at least 1")
        if self.max_batch_size < 1:
            out.append("--max-batch-size must be at least 1")
        if self.max_wait_ms < 0:
            out.append("--max-wait-ms must not be negative")
        if self.max_body_bytes < 1024:
            out.append("--max-body-bytes must be at least 1024")
        if self.request_log and not 0.0 <= self.request_log.sample_rate <= 1.0:
            out.append("--sample-rate must be between 0 and 1")
        if self.shadow_url:
            from .shadow import ShadowUrlError, Target

            try:
                Target.parse(self.shadow_url)
            except ShadowUrlError as exc:
                out.append(f"--shadow-url: {exc}")
        return out
