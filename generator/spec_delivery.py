"""The spec's delivery sections: a challenger model served beside the champion (canary).

Kept apart from `spec_runtime.py` (serve, kubernetes, drift) to keep each module short;
`Kubernetes.challenger` holds it. See docs/delivery.md for what is rendered.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from .spec_types import DnsLabel, Strict


class ChallengerThresholds(Strict):
    """What the challenger's live metrics must meet for `mlgen promote` to promote it; any
    one failed rolls it back."""

    max_error_rate: float = Field(0.01, ge=0, le=1)
    """Highest share of the challenger's prediction requests answered with a 5xx status."""
    max_latency_p95_ms: float = Field(250.0, gt=0)
    """Highest 95th percentile of the challenger's prediction latency, in milliseconds (from
    the server's latency histogram, interpolated inside a bucket as Prometheus does)."""
    max_prediction_psi: float = Field(0.2, gt=0)
    """Highest population stability index between the champion's and the challenger's
    prediction distributions (score histogram, value histogram for regression, or predicted
    classes); 0.1-0.2 is a moderate shift, above 0.25 a large one."""
    min_requests: int = Field(100, ge=1)
    """Fewest prediction requests the challenger must have answered before promote decides;
    fewer is unusable input (exit 2), never a promotion."""


class Challenger(Strict):
    """A challenger model served as a canary: a second Deployment NAME-challenger behind the
    same Service, so it gets a share of the requests that follows the replica ratio."""

    image_tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    """Image tag (the model version under test) the challenger Deployment runs, from the
    same repository as the champion (required)."""
    weight: int = Field(10, ge=1, le=50)
    """Percent of requests the challenger should get. The Service balances over pods, so the
    share is approximate: challenger replicas are round(champion * weight / (100 - weight)),
    at least 1, and the real share is challenger / (champion + challenger) pods."""
    environments: tuple[DnsLabel, ...] | None = None
    """Environments whose overlay runs the challenger; default: the last one (production).
    Each must be listed in kubernetes.environments."""
    thresholds: ChallengerThresholds = Field(default_factory=ChallengerThresholds)
    """Limits `mlgen promote` checks the challenger against."""


def challenger_replicas(champion: int, weight: int) -> int:
    """Challenger pods that give about `weight` percent of a Service's traffic."""
    return max(1, round(champion * weight / (100 - weight)))
