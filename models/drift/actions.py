"""What a drift run does on dataset drift: the spec's `drift.on_drift` actions.

`alert` prints a one-line alert to stderr (the CronJob's log) beside the `mlgen_drift_detected`
metric that Alertmanager routes; `retrain` calls the retrain hook named by `drift.retrain_hook`
(see mlgen.publish.retrain). A failing action is recorded in the report and on stderr; it does not hide
the drift verdict (the exit code stays 1).
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mlgen.models.drift.run import DriftReport


def run_actions(report: DriftReport, actions: Iterable[str], *, hook: str, spec: Any,
                echo: Callable[[str], None] | None = None,
                project_dir: Path | None = None) -> list[dict[str, Any]]:
    """Run the on_drift actions; `project_dir` (the -C folder) is where a command hook runs."""
    say = echo or (lambda text: print(text, file=sys.stderr))
    done: list[dict[str, Any]] = []
    if not report.dataset_drift or report.exit_code == 2:
        return done
    names = ", ".join(f.name for f in report.drifted)
    reason = (f"drift in {len(report.drifted)} of {len(report.evaluated)} features "
              f"({report.share:.0%}): {names}")
    for action in actions:
        if action == "alert":
            say(f"DRIFT ALERT [{report.model or 'model'}]: {reason}")
            done.append({"action": "alert", "status": "sent", "detail": reason})
        elif action == "retrain":
            if hook in ("", "none"):
                done.append({"action": "retrain", "status": "skipped",
                             "detail": "drift.retrain_hook is 'none'"})
                say("retrain requested by drift.on_drift but drift.retrain_hook is 'none'")
                continue
            from mlgen.errors import MlgenError
            from mlgen.publish.retrain import get_hook

            details = {"model": report.model, "share": report.share,
                       "features": [f.name for f in report.drifted],
                       "rows": report.current.get("rows"), "reference": report.reference.get("path")}
            try:
                ref = get_hook(hook, spec, project_dir=project_dir).trigger(reason, details)
            except (MlgenError, OSError) as exc:
                say(f"retrain hook {hook!r} failed: {exc}")
                done.append({"action": "retrain", "status": "failed", "hook": hook,
                             "detail": str(exc)})
                continue
            say(f"retrain started via {hook}: {ref}")
            done.append({"action": "retrain", "status": "triggered", "hook": hook, "detail": ref})
        else:
            done.append({"action": action, "status": "unknown action"})
    return done
