"""The model gate: may this model replace the one in production?

Two kinds of check, both from mlgen.yaml `model.gate`:
  - thresholds (`metrics: {roc_auc: {min: 0.7}, brier: {max: 0.25}}`): absolute floors/ceilings;
  - the champion (`champion: {metric, min_delta, higher_is_better}`): the challenger's metric
    against the production model's, read from a metrics file or an http(s) URL. A champion that
    is absent (file missing, URL answers 404/410) is an error unless the caller says this may be
    the first model (`--first-model`): a typo in the path must not wave a model through.

Exit codes follow the CLI: 0 passed, 1 a check failed, 2 the input is unusable (metrics file
missing or not JSON, a gated metric absent or not a number, champion unreachable). Pure
standard library, so the gate runs in CI before any heavy dependency is installed.
"""
from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mlgen.errors import UsageError

GATE_SCHEMA = "mlgen.gate/v1"
MAX_CHAMPION_BYTES = 1_000_000  # a metrics file is a few hundred bytes; refuse to buffer a page


class GateInputError(UsageError):
    """The gate cannot decide (exit 2): a file, a metric or the champion is missing or unusable."""


@dataclass(frozen=True)
class Bound:
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class ChampionRule:
    metric: str
    min_delta: float = 0.0
    higher_is_better: bool = True


@dataclass(frozen=True)
class Check:
    kind: Literal["threshold", "champion"]
    metric: str
    value: float
    passed: bool
    rule: str  # for people: ">= 0.7", "<= champion 0.21 - 0.01"
    min: float | None = None
    max: float | None = None
    champion: float | None = None
    min_delta: float | None = None


@dataclass(frozen=True)
class ChampionInfo:
    source: str | None  # redacted: never a token or password
    metrics: Mapping[str, float] | None
    note: str = ""


@dataclass(frozen=True)
class GateResult:
    model: str
    metrics_file: str
    metrics: Mapping[str, float]
    checks: tuple[Check, ...]
    champion: ChampionInfo
    notes: tuple[str, ...] = ()
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(
        timespec="seconds").replace("+00:00", "Z"))

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


# --- reading inputs ---------------------------------------------------------------------------


def parse_metrics(doc: Any, where: str) -> dict[str, Any]:
    """Metric name -> value from a metrics.json (flat), or a document holding `metrics` as a
    mapping or as a list of {name, value} (a previous gate.json), so a registry's or a previous
    run's report can serve as the champion too."""
    if isinstance(doc, Mapping) and "metrics" in doc and not _is_number(doc.get("metrics")):
        inner = doc["metrics"]
        if isinstance(inner, list):
            try:
                return {str(m["name"]): m["value"] for m in inner}
            except (KeyError, TypeError):
                raise GateInputError(f"{where}: 'metrics' is a list but not of {{name, value}} "
                                     "objects") from None
        doc = inner
    if not isinstance(doc, Mapping):
        raise GateInputError(f"{where}: expected a JSON object of metric name -> number, "
                             f"found {type(doc).__name__}")
    return {str(k): v for k, v in doc.items()}


def read_metrics(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateInputError(f"{path}: metrics file not found (model.metrics_file in mlgen.yaml); "
                             "run the train stage first (`mlgen run train`)") from None
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read the metrics file: {exc}") from exc
    return parse_metrics(_json(text, str(path)), str(path))


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise GateInputError(f"{where}: not valid JSON ({exc})") from exc


def redact_url(url: str) -> str:
    """scheme://host[:port]/path: user info and the query (where tokens live) are dropped."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{parts.path}{query}"


FIRST_MODEL_HINT = ("pass --first-model (or MLGEN_GATE_FIRST_MODEL=1) only when there is no "
                    "production model yet")


def load_champion(source: str | None, base: Path = Path("."), timeout: float = 10.0,
                  first_model: bool = False) -> ChampionInfo:
    """The champion's metrics from a file (relative to `base`) or an http(s) URL.

    An absent champion passes as the first model only when `first_model` is set; otherwise it
    is unusable input, because a mistyped path looks exactly like "no champion yet".
    """
    if not source:
        return ChampionInfo(None, None, "no champion given (--champion or MLGEN_GATE_CHAMPION); "
                                        "the champion comparison was skipped")
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_champion(source, timeout, first_model)
    if "://" in source:
        raise GateInputError(f"--champion {redact_url(source)}: only http(s) URLs and file "
                             "paths are supported")
    path = Path(source)
    path = path if path.is_absolute() else base / path
    if not path.exists():
        if not first_model:
            raise GateInputError(f"--champion {source}: champion metrics file not found ({path}); "
                                 f"check the path, or {FIRST_MODEL_HINT}")
        return ChampionInfo(str(source), None, f"no champion metrics at {source}: this is the "
                                               "first model (--first-model), so the champion "
                                               "comparison passes")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GateInputError(f"--champion {source}: cannot read: {exc}") from exc
    return ChampionInfo(str(source), parse_metrics(_json(text, str(source)), str(source)))


def _fetch_champion(url: str, timeout: float, first_model: bool) -> ChampionInfo:
    from mlgen import __version__

    shown = redact_url(url)
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": f"mlgen/{__version__} gate"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_CHAMPION_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410) and first_model:
            return ChampionInfo(shown, None, f"no champion at {shown} (HTTP {exc.code}): this is "
                                             "the first model (--first-model), so the champion "
                                             "comparison passes")
        if exc.code in (404, 410):
            raise GateInputError(f"--champion {shown}: HTTP {exc.code}, no champion metrics "
                                 f"there; check the URL, or {FIRST_MODEL_HINT}") from None
        raise GateInputError(f"--champion {shown}: HTTP {exc.code} {exc.reason}; the gate cannot "
                             "compare with the champion") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise GateInputError(f"--champion {shown}: cannot fetch ({reason}); the gate cannot "
                             "compare with the champion") from None
    if len(body) > MAX_CHAMPION_BYTES:
        raise GateInputError(f"--champion {shown}: answer is over {MAX_CHAMPION_BYTES} bytes; "
                             "expected a small metrics JSON")
    return ChampionInfo(shown, parse_metrics(_json(body.decode("utf-8", "replace"), shown), shown))


# --- deciding ---------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _at_least(value: float, bound: float) -> bool:
    return value >= bound or math.isclose(value, bound, rel_tol=1e-9, abs_tol=1e-12)


def _number(metrics: Mapping[str, Any], name: str, where: str) -> float:
    value = metrics[name]
    if not _is_number(value):
        raise GateInputError(f"{where}: metric '{name}' is {value!r}, not a finite number")
    return float(value)


def evaluate_gate(model: str, metrics_file: str, metrics: Mapping[str, Any],
                  thresholds: Mapping[str, Bound], rule: ChampionRule | None,
                  champion: ChampionInfo) -> GateResult:
    wanted = list(thresholds) + ([rule.metric] if rule else [])
    missing = [m for m in dict.fromkeys(wanted) if m not in metrics]
    if missing:
        have = ", ".join(sorted(metrics)) or "none"
        raise GateInputError(
            f"{metrics_file}: no metric(s) {', '.join(missing)} (named in mlgen.yaml "
            f"model.gate); the file has: {have}")
    checks: list[Check] = []
    for name, bound in thresholds.items():
        value = _number(metrics, name, metrics_file)
        ok = True
        parts = []
        if bound.min is not None:
            ok = ok and _at_least(value, bound.min)
            parts.append(f">= {_fmt(bound.min)}")
        if bound.max is not None:
            ok = ok and _at_least(-value, -bound.max)
            parts.append(f"<= {_fmt(bound.max)}")
        checks.append(
            Check("threshold", name, value, ok, " and ".join(parts), bound.min, bound.max)
        )
    notes = [champion.note] if champion.note else []
    if rule is not None and champion.metrics is not None:
        value = _number(metrics, rule.metric, metrics_file)
        if rule.metric not in champion.metrics:
            raise GateInputError(f"{champion.source}: the champion's metrics have no "
                                 f"'{rule.metric}' (model.gate.champion.metric); it has: "
                                 f"{', '.join(sorted(champion.metrics)) or 'none'}")
        best = _number(champion.metrics, rule.metric, str(champion.source))
        if rule.higher_is_better:
            ok = _at_least(value, best + rule.min_delta)
            text = f">= champion {_fmt(best)} + {_fmt(rule.min_delta)}"
        else:
            ok = _at_least(best - rule.min_delta, value)
            text = f"<= champion {_fmt(best)} - {_fmt(rule.min_delta)}"
        checks.append(Check("champion", rule.metric, value, ok, text, champion=best,
                            min_delta=rule.min_delta))
    elif rule is None and champion.metrics is not None:
        notes.append("a champion was given but mlgen.yaml has no model.gate.champion rule; "
                     "the comparison was skipped")
    if not thresholds and rule is None:
        notes.append("mlgen.yaml sets no model.gate metrics or champion: nothing was checked")
    return GateResult(model, metrics_file, dict(metrics), tuple(checks), champion, tuple(notes))


# --- reporting --------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def result_to_dict(result: GateResult) -> dict[str, Any]:
    """gate.json. `metrics` is the list of threshold checks that `mlgen comment` also reads."""
    champion_check = next((c for c in result.checks if c.kind == "champion"), None)
    champion: dict[str, Any] = {"source": result.champion.source, "note": result.champion.note}
    if champion_check is not None:
        champion.update(metric=champion_check.metric, value=champion_check.value,
                        champion_value=champion_check.champion, min_delta=champion_check.min_delta,
                        rule=champion_check.rule, passed=champion_check.passed)
    return {
        "schema": GATE_SCHEMA, "model": result.model, "passed": result.passed,
        "created_at": result.created_at, "metrics_file": result.metrics_file,
        "metrics": [{"name": c.metric, "value": c.value, "min": c.min, "max": c.max,
                     "passed": c.passed, "rule": c.rule}
                    for c in result.checks if c.kind == "threshold"],
        "champion": champion,
        "checks": [asdict(c) for c in result.checks],
        "all_metrics": {k: v for k, v in result.metrics.items() if _is_number(v)},
        "notes": list(result.notes),
    }


def _code(text: Any) -> str:
    """Inline code in a Markdown table cell: no backticks or pipes can break out of it."""
    return "`" + str(text).replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def render_markdown(result: GateResult) -> str:
    """gate.md: what the PR bot posts under its "Model gate" heading (so no heading here)."""
    head = "✅ **Passed**" if result.passed else "❌ **Failed**"
    failed = [c for c in result.checks if not c.passed]
    lines = [f"{head}: model {_code(result.model)}, metrics from {_code(result.metrics_file)}"
             + (f"; {len(failed)} of {len(result.checks)} check(s) failed." if failed else "."), ""]
    if result.checks:
        lines += ["| check | metric | value | rule | result |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {c.kind} | {_code(c.metric)} | {_fmt(c.value)} | {_code(c.rule)} | "
                  f"{'✅ pass' if c.passed else '❌ fail'} |" for c in result.checks]
        lines.append("")
    for note in result.notes:
        lines += [f"> {note.replace(chr(10), ' ')}", ""]
    numbers = {k: v for k, v in result.metrics.items() if _is_number(v)}
    if numbers:
        lines += [
            "<details><summary>All metrics</summary>",
            "",
            "| metric | value |",
            "| --- | --- |",
            *(f"| {_code(k)} | {_fmt(v)} |" for k, v in sorted(numbers.items())),
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)


def render_table(result: GateResult) -> str:
    """The terminal table."""
    rows = [("check", "metric", "value", "rule", "result")]
    rows += [(c.kind, c.metric, _fmt(c.value), c.rule, "pass" if c.passed else "FAIL")
             for c in result.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
           for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    out += [f"note: {n}" for n in result.notes]
    out.append(f"gate {'PASSED' if result.passed else 'FAILED'} for {result.model}")
    return "\n".join(out)


def write_reports(report_dir: Path, doc: Mapping[str, Any], markdown: str) -> tuple[Path, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = report_dir / "gate.json", report_dir / "gate.md"
    json_path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    md_path.write_text(markdown, encoding="utf-8")
    return json_path, md_path


def error_report(model: str, message: str) -> tuple[dict[str, Any], str]:
    """What the reports say when the gate could not decide: the PR still learns why."""
    doc = {"schema": GATE_SCHEMA, "model": model, "passed": False, "error": message,
           "metrics": [], "checks": [], "notes": []}
    shown = message.replace("`", "'")  # keep the fenced block closed
    md = f"❌ **The gate could not run** for model {_code(model)}:\n\n```\n{shown}\n```\n"
    return doc, md
