"""The examples are golden files: rendering each spec afresh must reproduce them byte for byte."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden.refresh import build, copy_specs, example_dirs


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_there_are_at_least_two_examples() -> None:
    names = [p.name for p in example_dirs()]
    assert {"credit-risk", "house-prices"} <= set(names), names


@pytest.mark.parametrize("example", example_dirs(), ids=lambda p: p.name)
def test_example_matches_a_fresh_render(example: Path, tmp_path: Path) -> None:
    fresh = tmp_path / example.name
    fresh.mkdir()
    copy_specs(example, fresh)
    build(fresh)
    expected, actual = tree(example), tree(fresh)
    assert sorted(actual) == sorted(expected), "file lists differ: run `make golden` and review"
    stale = [path for path in expected if expected[path] != actual[path]]
    assert not stale, f"out of date (run `make golden` and review the diff): {stale}"


@pytest.mark.parametrize("example", example_dirs(), ids=lambda p: p.name)
def test_rendering_twice_is_byte_identical(example: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for target in (first, second):
        target.mkdir()
        copy_specs(example, target)
        build(target)
    assert tree(first) == tree(second)
