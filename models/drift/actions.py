"""What a drift run does on dataset drift: the spec's `drift.on_drift` actions.

`alert` prints a one-line alert to stderr (the CronJob's log) beside the `mlgen_drift_detected`
metric that Alertmanager routes. `retrain` is a decision, not a call: the runtime hands a
`RetrainRequest` to the `trigger` it was given, and the drift command's trigger calls the hook
named by `drift.retrain_hook` (mlgen.publish.retrain), so the model runtime never imports
publishing code. A failing action is recorded in the report and on stderr; it does not hide
the drift verdict (the exit code stays 1).
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlgen.models.drift.run import DriftReport


@dataclass(frozen=True)
class RetrainRequest:
    """Drift asks for a retrain: which hook, why, and the facts the hook passes on."""

    hook: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)


class ActionFailed(Exception):
    """A trigger could not start the retrain; the message says why (no secret in it)."""


Trigger = Callable[[RetrainRequest], str]  # returns where the retrain runs (a URL, a job)


def retrain_request(report: DriftReport, hook: str) -> RetrainRequest:
    names = ", ".join(f.name for f in report.drifted)
    reason = (f"drift in {len(report.drifted)} of {len(report.evaluated)} features "
              f"({report.share:.0%}): {names}")
    details = {"model": report.model, "share": report.share,
               "features": [f.name for f in report.drifted],
               "rows": report.current.get("rows"), "reference": report.reference.get("path")}
    return RetrainRequest(hook, reason, details)


def run_actions(report: DriftReport, actions: Iterable[str], *, hook: str,
                trigger: Trigger | None,
                echo: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run the on_drift actions; `trigger` starts a retrain (None: retrain is not wired)."""
    say = echo or (lambda text: print(text, file=sys.stderr))
    done: list[dict[str, Any]] = []
    if not report.dataset_drift or report.exit_code == 2:
        return done
    request = retrain_request(report, hook)
    for action in actions:
        if action == "alert":
            say(f"DRIFT ALERT [{report.model or 'model'}]: {request.reason}")
            done.append({"action": "alert", "status": "sent", "detail": request.reason})
        elif action == "retrain":
            if hook in ("", "none") or trigger is None:
                done.append({"action": "retrain", "status": "skipped",
                             "detail": "drift.retrain_hook is 'none'"})
                say("retrain requested by drift.on_drift but drift.retrain_hook is 'none'")
                continue
            try:
                ref = trigger(request)
            except ActionFailed as exc:
                say(f"retrain hook {hook!r} failed: {exc}")
                done.append({"action": "retrain", "status": "failed", "hook": hook,
                             "detail": str(exc)})
                continue
            say(f"retrain started via {hook}: {ref}")
            done.append({"action": "retrain", "status": "triggered", "hook": hook, "detail": ref})
        else:
            done.append({"action": action, "status": "unknown action"})
    return done
