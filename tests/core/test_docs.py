"""The manual builds: `mkdocs build --strict` fails on a broken page link, anchor or link into
the repository, and the spec reference page is generated from the schema."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytest.importorskip("mkdocs", reason="mkdocs is in the dev extra")


def _build(site: Path, config: Path = REPO / "mkdocs.yml") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f",
                           str(config), "-d", str(site)], capture_output=True, text=True,
                          cwd=REPO, timeout=300, check=False)


def test_docs_build_strict_and_every_spec_key_is_on_the_reference_page(tmp_path: Path) -> None:
    out = _build(tmp_path / "site")
    assert out.returncode == 0, out.stdout + out.stderr
    page = (tmp_path / "site" / "reference" / "spec.html").read_text()
    schema = json.loads(subprocess.run([sys.executable, "-m", "mlgen", "schema"],
                                       capture_output=True, text=True, check=True).stdout)
    for node in [schema, *schema["$defs"].values()]:
        for key in node.get("properties", {}):
            assert f"<code>{key}</code>" in page, key
    assert not (tmp_path / "site" / "hooks").exists(), "the build hooks are not pages"


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# x\n\n[gone](../examples/no-such-file.yaml)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text((REPO / "mkdocs.yml").read_text().replace(
        "docs/hooks/", f"{REPO}/docs/hooks/").split("\nnav:")[0] + "\n")
    out = _build(tmp_path / "site", config)
    assert out.returncode != 0
    assert "no-such-file.yaml" in out.stdout + out.stderr
