"""Bad input: exit 2, a message naming file, key path and line, and nothing written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlgen.spec_loader import parse_spec

from tests.helpers import SKETCH, run_mlgen, snapshot

GOOD = SKETCH.read_text()

# (case id, replacement old -> new in the good spec, expected key path, expected message fragment)
CASES = [
    ("invalid-yaml", ("owner: retail-risk-ml", "owner: [unclosed"), "", "invalid YAML"),
    ("wrong-type", ("  port: 8080", "  port: eighty"), "serve.port", "valid integer"),
    (
        "unknown-key",
        ("  port: 8080", "  port: 8080\n  sidecar: true"),
        "serve.sidecar",
        "unknown key",
    ),
    ("misspelled-key", ("  port: 8080", "  prot: 8080"), "serve.prot", "did you mean 'port'"),
    ("name-not-dns", ("name: credit-risk", "name: Credit_Risk"), "name", "DNS-1123"),
    (
        "invalid-cron",
        ('schedule: "0 */6 * * *"', 'schedule: "0 */6 * *"'),
        "drift.schedule",
        "5 fields",
    ),
    (
        "cron-out-of-range",
        ('schedule: "0 */6 * * *"', 'schedule: "61 * * * *"'),
        "drift.schedule",
        "outside 0-59",
    ),
    (
        "bad-quantity",
        ('limits: {cpu: "1", memory: 1Gi}', 'limits: {cpu: "1", memory: 1Gb}'),
        "serve.resources.limits.memory",
        "Kubernetes quantity",
    ),
    (
        "autoscaling-min-gt-max",
        ("{min: 3, max: 20,", "{min: 30, max: 20,"),
        "serve.autoscaling",
        "min (30)",
    ),
    ("port-out-of-range", ("  port: 8080", "  port: 70000"), "serve.port", "65535"),
    (
        "duplicate-features",
        ("categorical: [employment_type, region]", "categorical: [employment_type, income]"),
        "model.features",
        "repeated: income",
    ),
    (
        "empty-features",
        (
            ("    numeric: [income, age, debt_ratio, credit_lines]\n"
            "    categorical: [employment_type, region]"),
            "    numeric: []\n    categorical: []",
        ),
        "model.features",
        "at least one feature",
    ),
    (
        "unknown-overlay-env",
        ("    dev:\n      autoscaling", "    qa:\n      autoscaling"),
        "kubernetes",
        "unknown environment(s) qa",
    ),
    ("api-version", ("apiVersion: mlgen/v1", "apiVersion: mlgen/v0"), "apiVersion", "mlgen/v1"),
    (
        "python-tag",
        ("model:\n  task: classification", "model:\n  task: !!python/object:os.system x"),
        "model.task",
        "unsupported YAML value",
    ),
    ("duplicate-key", ("owner: retail-risk-ml", "owner: a\nowner: b"), "owner", "duplicate key"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_spec_exits_2_names_key_and_line_writes_nothing(case: tuple, tmp_path: Path) -> None:
    _, (old, new), key_path, fragment = case
    assert old in GOOD, f"test case out of date: {old!r} not in the example spec"
    (tmp_path / "mlgen.yaml").write_text(GOOD.replace(old, new, 1))
    before = snapshot(tmp_path)
    result = run_mlgen("-C", str(tmp_path), "render")
    assert result.returncode == 2, result.stderr
    message = result.stderr
    assert "mlgen.yaml:" in message
    assert re.search(r"mlgen\.yaml:\d+:\d+:", message), message
    if key_path:
        assert f" {key_path}:" in message, message
    assert fragment in message, message
    assert "Traceback" not in message
    assert snapshot(tmp_path) == before


def test_error_line_points_at_the_offending_key() -> None:
    text = GOOD.replace("  port: 8080", "  prot: 8080")
    line = text.splitlines().index("  prot: 8080") + 1
    with pytest.raises(Exception) as info:
        parse_spec(text, "mlgen.yaml")
    assert f"mlgen.yaml:{line}:3: serve.prot:" in str(info.value)


def test_missing_spec_file(tmp_path: Path) -> None:
    result = run_mlgen("-C", str(tmp_path), "render")
    assert result.returncode == 2
    assert "mlgen.yaml" in result.stderr and "not found" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_replicas_under_autoscaling_are_warned_about_with_file_line_and_key(tmp_path: Path) -> None:
    """serve.replicas (and an overlay's replicas) do nothing while the HPA owns the count: the
    spec used to accept them silently. A warning, not an error: a spec that sets both renders
    fine (the count is simply the HPA's)."""
    text = GOOD.replace("  port: 8080\n", "  port: 8080\n  replicas: 3\n", 1)
    text = text.replace("    prod:\n", "    prod:\n      replicas: 5\n", 1)
    (tmp_path / "mlgen.yaml").write_text(text)
    result = run_mlgen("-C", str(tmp_path), "render")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    spec_file = tmp_path / "mlgen.yaml"
    assert warnings == [
        (f"warning: {spec_file}:{_line_of(text, '  replicas: 3')}:3: serve.replicas: ignored while "
        "autoscaling is on: the HorizontalPodAutoscaler sets the pod count between "
        "serve.autoscaling.min (3) and max (20); remove replicas, or set "
        "serve.autoscaling.enabled: false to fix the count"),
        (f"warning: {spec_file}:{_line_of(text, '      replicas: 5')}:7: "
        "kubernetes.overlays.prod.replicas: ignored while autoscaling is on: the "
        "HorizontalPodAutoscaler sets the pod count between serve.autoscaling.min (3) and max "
        "(20); set this overlay's autoscaling min and max instead"),
    ], result.stderr


@pytest.mark.parametrize("change", [
    ("  autoscaling: {min: 3,", "  autoscaling: {enabled: false, min: 3,"),  # replicas are used
    ("", ""),  # nothing set explicitly (the example)
])
def test_no_replicas_warning_when_they_take_effect_or_are_not_set(change: tuple[str, str]) -> None:
    warned: list[object] = []
    assert change[0] in GOOD
    parse_spec(GOOD.replace(*change, 1), "mlgen.yaml", warn=warned.append)
    assert warned == []


def test_the_schema_says_replicas_are_ignored_under_autoscaling() -> None:
    result = run_mlgen("schema")
    assert result.returncode == 0
    assert result.stdout.count("with autoscaling on") >= 1 and "mlgen warns" in result.stdout
