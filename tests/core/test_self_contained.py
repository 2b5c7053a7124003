"""The tests read only files inside the repository: a clone on another machine (GitHub Actions,
a user's laptop) has no `shared/` folder beside it. The reference files the tests need are
vendored in tests/reference/ with where each came from."""
from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import REPO as REPO_ROOT

ROOT = REPO_ROOT
REFERENCE = ROOT / "tests" / "reference"

# A path built from outside the checkout: `parents[N]` past the root, a literal "shared"
# path segment, or an absolute /work/ path.
_OUTSIDE = re.compile(r"""parents\[(\d+)\]|["']shared["']|\.\./shared|["']/work/""")


def _escapes_root(path: Path, match: re.Match[str]) -> bool:
    if match.group(1) is None:
        return True
    # parents[0] is the file's folder; the root is parents[depth - 1]
    depth = len(path.relative_to(ROOT).parts) - 1
    return int(match.group(1)) > depth


def test_no_test_reads_outside_the_repository() -> None:
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if "golden" in path.relative_to(ROOT).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for match in _OUTSIDE.finditer(line):
                if _escapes_root(path, match):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "tests must read only files inside the repository:\n" + "\n".join(
        offenders)


def test_vendored_reference_files_are_present_and_documented() -> None:
    readme = (REFERENCE / "README.md").read_text()
    files = sorted(p.name for p in REFERENCE.iterdir() if p.name != "README.md")
    assert "github-openapi-subset.json" in files and "github-webhooks-subset.json" in files
    for name in files:
        assert f"| {name} |" in readme, (
            f"tests/reference/README.md does not say where {name} came from"
        )
