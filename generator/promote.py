"""`mlgen promote`: compare a challenger's live metrics with the champion's and decide.

Both servers export the Prometheus text of `mlgen.models.serving.metrics`; this module reads
that text (no Prometheus server needed), computes per server the error rate and the p95
latency of the prediction routes, and the population stability index (PSI) between the two
servers' prediction distributions (the score histogram, the value histogram for regression or
the predicted-class counts), and checks them against `kubernetes.challenger.thresholds`.

A shadow challenger (`mode: shadow`) is judged on the same three checks, from its own
/metrics (it answers the champion's mirrored copies); the champion's /metrics adds what only
the mirroring side sees: copies that failed (refused, reset, past the deadline), which count
against max_error_rate as errors the clients would have got, and the share of rows the shadow
predicted differently, reported beside the checks.

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
class MirrorStats:
    """The champion's side of a shadow: mlgen_shadow_* counters (see serving/shadow.py)."""

    sent: float
    failed: float
    compared_rows: float
    disagreeing_rows: float

    @property
    def failure_rate(self) -> float:
        tried = self.sent + self.failed
        return self.failed / tried if tried else 0.0

    @property
    def disagreement_rate(self) -> float | None:
        return self.disagreeing_rows / self.compared_rows if self.compared_rows else None


def mirror_stats(text: str) -> MirrorStats:
    totals: dict[str, float] = {}
    for s in parse(text):
        key = s.name
        if s.name == "mlgen_shadow_requests_total":
            key = f"{s.name}:{s.labels.get('outcome', '')}"
        totals[key] = totals.get(key, 0.0) + s.value
    return MirrorStats(totals.get("mlgen_shadow_requests_total:sent", 0.0),
                       totals.get("mlgen_shadow_requests_total:failed", 0.0),
                       totals.get("mlgen_shadow_compared_rows_total", 0.0),
                       totals.get("mlgen_shadow_disagreeing_rows_total", 0.0))


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


def decide(champion: ServerStats, challenger: ServerStats, limits: Limits,
           mirror: MirrorStats | None = None) -> Decision:
    """The checks; with `mirror` (a shadow challenger), also the champion's mirroring side."""
    if challenger.requests < limits.min_requests:
        hint = ("is MLGEN_SHADOW_URL set on the champion, and the shadow reachable?"
                if mirror is not None and challenger.requests == 0 else
                "let the challenger run longer")
        raise PromoteInputError(
            f"the challenger answered {int(challenger.requests)} prediction request(s), fewer "
            f"than thresholds.min_requests ({limits.min_requests}): {hint}")
    def p95(s: ServerStats) -> float | None:
        return None if s.p95_seconds is None else s.p95_seconds * 1000.0

    latency = p95(challenger)
    drift = psi(champion.distribution, challenger.distribution)
    checks: tuple[Check, ...] = (
        Check("error_rate", champion.error_rate, challenger.error_rate, limits.max_error_rate,
              challenger.error_rate <= limits.max_error_rate),
        Check("latency_p95_ms", p95(champion), latency, limits.max_latency_p95_ms,
              latency is None or latency <= limits.max_latency_p95_ms),
        Check("prediction_psi", None, drift, limits.max_prediction_psi,
              drift is None or drift <= limits.max_prediction_psi),
    )
    if mirror is not None:
        checks += (
            Check("mirror_failure_rate", None, mirror.failure_rate, limits.max_error_rate,
                  mirror.failure_rate <= limits.max_error_rate),
            # Reported, not judged: a better model is expected to disagree on some rows.
            Check("disagreement_rate", None, mirror.disagreement_rate, None, True),
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
    mode: str = "canary"  # kubernetes.challenger.mode


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
                        t.min_requests), challenger.engine, challenger.mode)


def evaluate(limits: Limits, champion_metrics: str, challenger_metrics: str,
             mode: str = "canary") -> Decision:
    """Decide from the two servers' /metrics texts (each may be several pods' in a row)."""
    mirror = mirror_stats(champion_metrics) if mode == "shadow" else None
    return decide(stats(champion_metrics), stats(challenger_metrics), limits, mirror)
