"""`mlgen migrate` with migrations registered by the test (mlgen itself has one apiVersion)."""
from __future__ import annotations

import re

import pytest
from mlgen.errors import MlgenError
from mlgen.migrate import MIGRATIONS, Migration, mapping_at, migrate_text, rename_key

from .conftest import Project


def _replicas_was_instances(doc: object) -> None:
    rename_key(mapping_at(doc, "serve"), "instances", "replicas")


def _owner_was_team(doc: object) -> None:
    rename_key(doc, "team", "owner")


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    # A two-step history ending at the real apiVersion: v0alpha -> v0test -> v1.
    monkeypatch.setitem(MIGRATIONS, "mlgen/v0alpha", Migration(
        "mlgen/v0alpha", "mlgen/v0test", "'team' is now 'owner'", _owner_was_team))
    monkeypatch.setitem(MIGRATIONS, "mlgen/v0test", Migration(
        "mlgen/v0test", "mlgen/v1", "'serve.instances' is now 'serve.replicas'",
        _replicas_was_instances))


def test_migration_keeps_comments_order_and_quoting(project: Project, registered: None) -> None:
    original = project.read("mlgen.yaml")
    assert "# The one file mlgen reads." in original and 'owner: "ml-platform"' in original
    old = (original.replace("apiVersion: mlgen/v1", "apiVersion: mlgen/v0alpha")
           .replace('owner: "ml-platform"', 'team: "ml-platform"   # who gets paged')
           .replace("  port: 8080\n", "  port: 8080\n  instances: 2          # two pods, always\n"))
    project.write("mlgen.yaml", old)
    project.commit("a spec from an older mlgen")
    rc, out, _ = project.mlgen("migrate", "--check")
    assert rc == 1 and "+apiVersion: mlgen/v1" in out
    assert project.read("mlgen.yaml") == old
    rc, _, err = project.mlgen("migrate")
    assert rc == 0 and "mlgen/v0alpha -> mlgen/v0test" in err
    migrated = project.read("mlgen.yaml")
    expected = original.replace(
        'owner: "ml-platform"', 'owner: "ml-platform"   # who gets paged'
    ).replace("  port: 8080\n", "  port: 8080\n  replicas: 2          # two pods, always\n")
    # Every other byte (comments, quotes, flow maps, blank lines) is as it was; a trailing
    # comment stays at its column, so only the spaces before it may differ.
    assert _comment_gaps(migrated) == _comment_gaps(expected)
    assert [line for line in migrated.splitlines() if "#" not in line] == \
        [line for line in expected.splitlines() if "#" not in line]
    assert 'owner: "ml-platform"' in migrated and "# who gets paged" in migrated
    diff = project.git("diff", "--stat", "--", "mlgen.yaml")
    assert "3 insertions(+), 3 deletions(-)" in diff
    assert project.mlgen("migrate", "--check")[0] == 0
    assert project.mlgen("sync")[0] == 0  # the migrated spec renders
    assert project.mlgen("check")[0] == 0


def test_no_migration_path_is_a_clear_error() -> None:
    with pytest.raises(MlgenError, match="no migration path from apiVersion 'mlgen/v7'"):
        migrate_text("apiVersion: mlgen/v7\nname: x\n")


def test_rename_refuses_to_clobber(registered: None) -> None:
    text = "apiVersion: mlgen/v0test\nserve:\n  instances: 2\n  replicas: 3\n"
    with pytest.raises(MlgenError, match="both are set"):
        migrate_text(text)


def test_indentation_style_is_detected() -> None:
    text = ("apiVersion: mlgen/v0test   # old\nserve:\n    instances: 2\n    env:\n"
            "        - name: A\n          value: 'x'\n")
    registry = {"mlgen/v0test": Migration("mlgen/v0test", "mlgen/v1", "r", _replicas_was_instances)}
    result = migrate_text(text, registry=registry)
    assert _comment_gaps(result.text) == _comment_gaps(
        text.replace("v0test", "v1").replace("instances", "replicas"))


def _comment_gaps(text: str) -> str:
    return re.sub(r"(?m)(\S) +#", r"\1 #", text)
