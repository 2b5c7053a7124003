"""`mlgen promote`: compare a challenger's live metrics with the champion's and decide.

Both servers export the Prometheus text of `mlgen.models.serving.metrics`; this module reads
that text (no Prometheus server needed), computes per server the error rate and the p95
latency of the prediction routes, and the population stability index (PSI) between the two
servers' prediction distributions (the score histogram, the value histogram for regression or
the predicted-class counts), and checks them against `kubernetes.challenger.thresholds`.

Counters are cumulative since each server started: run promote after the challenger has
served for a while (the canary's soak time), not across a restart.
"""
from __future__ import annotations

import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mlgen.models.contract import PREDICT_PATH, infer_path

from .errors import MlgenError

PREDICT_ROUTES = (infer_path("{name}"), PREDICT_PATH)  # the servers' metrics labels
_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
PSI_EPSILON = 1e-4  # an empty bucket on one side would make PSI infinite


class PromoteInputError(MlgenError):
    """A server could not be scraped or exported nothing usable (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class ServerStats:
    requests: float
    errors: float
    p95_seconds: float | None
    distribution: dict[str, float] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Check:
    metric: str
    champion: float | None
    challenger: float | None
    limit: float | None
    ok: bool


@dataclass(frozen=True)
class Decision:
    checks: tuple[Check, ...]
    promote: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"decision": "promote" if self.promote else "rollback", "reason": self.reason,
                "checks": [c.__dict__ for c in self.checks]}


def parse(text: str) -> list[Sample]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        out.append(Sample(m.group(1), dict(_LABEL.findall(m.group(2) or "")), value))
    return out


def _quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket (cumulative)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):  # beyond the last finite bound: report that bound
                return lower
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, count
    return lower


def _distribution(samples: list[Sample]) -> dict[str, float]:
    """Per-bucket (not cumulative) counts of the prediction distribution."""
    for hist in ("mlgen_prediction_score", "mlgen_prediction_value"):
        cumulative: dict[float, float] = {}
        for s in samples:  # summed: the text may be several pods' /metrics one after another
            if s.name == f"{hist}_bucket" and "le" in s.labels:
                le = float(s.labels["le"])
                cumulative[le] = cumulative.get(le, 0.0) + s.value
        if sum(cumulative.values()):
            out, before = {}, 0.0
            for le in sorted(cumulative):
                out[f"le={le}"] = cumulative[le] - before
                before = cumulative[le]
            return out
    classes: dict[str, float] = {}
    for s in samples:
        if s.name == "mlgen_predictions_total":
            key = f"class={s.labels.get('class', '')}"
            classes[key] = classes.get(key, 0.0) + s.value
    return classes


def stats(text: str) -> ServerStats:
    samples = parse(text)
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for s in samples:
        if s.labels.get("route") not in PREDICT_ROUTES:
            continue
        if s.name == "mlgen_http_requests_total":
            requests += s.value
            if s.labels.get("status", "").startswith("5"):
                errors += s.value
        elif s.name == "mlgen_http_request_duration_seconds_bucket" and "le" in s.labels:
            le = float(s.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + s.value
    return ServerStats(requests, errors, _quantile(0.95, buckets), _distribution(samples))


def psi(expected: dict[str, float], actual: dict[str, float]) -> float | None:
    """Population stability index of `actual` against `expected` over the same buckets."""
    keys = sorted(set(expected) | set(actual))
    e_total, a_total = sum(expected.values()), sum(actual.values())
    if not keys or e_total <= 0 or a_total <= 0:
        return None
    total = 0.0
    for k in keys:
        e = max(expected.get(k, 0.0) / e_total, PSI_EPSILON)
        a = max(actual.get(k, 0.0) / a_total, PSI_EPSILON)
        total += (a - e) * math.log(a / e)
    return total


@dataclass(frozen=True)
class Limits:
    max_error_rate: float
    max_latency_p95_ms: float
    max_prediction_psi: float
    min_requests: int


def decide(champion: ServerStats, challenger: ServerStats, limits: Limits) -> Decision:
    if challenger.requests < limits.min_requests:
        raise PromoteInputError(
            f"the challenger answered {int(challenger.requests)} prediction request(s), fewer "
            f"than thresholds.min_requests ({limits.min_requests}): let the canary run longer")
    def p95(s: ServerStats) -> float | None:
        return None if s.p95_seconds is None else s.p95_seconds * 1000.0

    latency = p95(challenger)
    drift = psi(champion.distribution, challenger.distribution)
    checks = (
        Check("error_rate", champion.error_rate, challenger.error_rate, limits.max_error_rate,
              challenger.error_rate <= limits.max_error_rate),
        Check("latency_p95_ms", p95(champion), latency, limits.max_latency_p95_ms,
              latency is None or latency <= limits.max_latency_p95_ms),
        Check("prediction_psi", None, drift, limits.max_prediction_psi,
              drift is None or drift <= limits.max_prediction_psi),
    )
    failed = [c.metric for c in checks if not c.ok]
    reason = (f"challenger over threshold: {', '.join(failed)}" if failed
              else "challenger within every threshold")
    return Decision(checks, not failed, reason)


def scrape(url: str, timeout: float = 10.0) -> str:
    if not url.startswith(("http://", "https://")):
        raise PromoteInputError(f"{url!r} is not an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return str(resp.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError) as exc:
        raise PromoteInputError(f"cannot scrape {url}: {exc}") from exc


def table(decision: Decision) -> str:
    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.4g}"

    rows = [("metric", "champion", "challenger", "limit", "result")]
    rows += [(c.metric, fmt(c.champion), fmt(c.challenger), fmt(c.limit),
              "ok" if c.ok else "FAIL") for c in decision.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    verdict = "PROMOTE" if decision.promote else "ROLL BACK"
    return "\n".join([*lines, f"{verdict}: {decision.reason}"])


@dataclass(frozen=True)
class Setup:
    """What promote needs from the spec for one environment."""

    environment: str
    namespace: str
    name: str  # the champion Deployment
    port: int
    challenger_image: str  # as the spec names it; --apply uses the live challenger's
    challenger_tag: str
    limits: Limits
    engine: str = "kubernetes"  # kubernetes.challenger.engine


def setup(folder: Path, environment: str) -> Setup:
    from .errors import UsageError
    from .project import load_project

    spec = load_project(folder)
    challenger = spec.kubernetes.challenger
    if challenger is None:
        raise UsageError("mlgen.yaml has no kubernetes.challenger: nothing to promote")
    if environment not in spec.kubernetes.challenger_environments:
        raise UsageError(f"environment {environment!r} runs no challenger; "
                         f"kubernetes.challenger.environments: "
                         f"{', '.join(spec.kubernetes.challenger_environments)}")
    t = challenger.thresholds
    return Setup(environment, spec.namespace, spec.name, spec.serve.port,
                 f"{spec.image_name}:{challenger.image_tag}", challenger.image_tag,
                 Limits(t.max_error_rate, t.max_latency_p95_ms, t.max_prediction_psi,
                        t.min_requests), challenger.engine)


def evaluate(limits: Limits, champion_metrics: str, challenger_metrics: str) -> Decision:
    """Decide from the two servers' /metrics texts (each may be several pods' in a row)."""
    return decide(stats(champion_metrics), stats(challenger_metrics), limits)
