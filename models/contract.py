"""The runtime contract: the facts the model image and the generator must agree on.

The server (mlgen.models.serving), the drift job (mlgen.models.drift), the rendered files
(Deployment probes, Service, ServiceMonitor, Dockerfile HEALTHCHECK, through the targets'
template context) and the spec's defaults all read these names, so a port or a path is
written once. Standard library only: every side, including a slim model image, imports it.
tests/core/test_contract.py checks the rendered files and the running server against it.
"""
from __future__ import annotations

SPEC_FILENAME = "mlgen.yaml"
STATE_DIR = ".mlgen"  # mlgen's own files in a repository: lock, journal, build inputs

DEFAULT_PORT = 8080

# Open Inference Protocol (KServe V2) health routes, the Prometheus endpoint, the plain route.
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
PREDICT_PATH = "/predict"
SERVER_METADATA_PATH = "/v2"


def model_path(name: str) -> str:
    return f"/v2/models/{name}"


def model_ready_path(name: str) -> str:
    """Ready once the model is loaded: what a smoke test after a deploy asks."""
    return f"{model_path(name)}/ready"


def infer_path(name: str) -> str:
    return f"{model_path(name)}/infer"


def feedback_path(name: str) -> str:
    """Where outcomes (ground-truth labels) for earlier predictions are posted."""
    return f"{model_path(name)}/feedback"


# The sampled request log the server writes and the drift job reads (JSON lines).
REQUEST_LOG_DIR = "/var/log/mlgen"
REQUEST_LOG_FILE = "requests.jsonl"
REQUEST_LOG_SAMPLE_RATE = 0.1
REQUEST_LOG_MAX_BYTES = 50_000_000
REQUEST_LOG_BACKUPS = 5
# The monitor CronJob writes its Prometheus textfile here, under the request log folder (the
# shared volume); the server's /metrics serves it, so no Pushgateway is needed.
MONITOR_METRICS_DIR = "monitor-metrics"
MONITOR_TEXTFILE = "mlgen_monitor.prom"

# Shadow challenger: a champion whose environment names SHADOW_URL_ENV (the shadow's base
# URL) mirrors its prediction requests there after answering them, marked with SHADOW_HEADER;
# a server logs such requests under REQUEST_LOG/SHADOW_LOG_DIR (which the drift job does not
# read) and never mirrors them again.
SHADOW_URL_ENV = "MLGEN_SHADOW_URL"
SHADOW_HEADER = "x-mlgen-shadow"
SHADOW_LOG_DIR = "shadow"

# Drift: a feature drifts when a distance is >= its threshold or a p-value is < its threshold;
# the window drifts when at least DRIFT_SHARE of the evaluated features drifted.
DRIFT_WASSERSTEIN = 0.1  # normalised by the reference's standard deviation, as Evidently
DRIFT_PSI = 0.2  # credit-risk convention: 0.1 watch, 0.2-0.25 act
DRIFT_JENSENSHANNON = 0.1
DRIFT_KS_PVALUE = 0.05
DRIFT_CHI2_PVALUE = 0.05
DRIFT_MISSING_RATE = 0.1  # absolute change in the share of missing values
DRIFT_SHARE = 0.5
