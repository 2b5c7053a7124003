"""`mlgen gitops pin` in a monorepo model's folder (where its CD runs): the digest lands in the
model's overlay, the root lock records it as mlgen's write, and the commit holds both."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import call_mlgen

from .conftest import git

DIGEST = "sha256:" + "ab" * 32
OVERLAY = "models/rent/k8s/overlays/prod/kustomization.yaml"


def test_pin_in_a_model_folder_records_it_in_the_root_lock(
        monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call_mlgen(capsys, "-C", str(monorepo / "models/rent"), "gitops", "pin",
                                "prod", "--digest", DIGEST, "--commit")
    assert code == 0, out + err
    doc = yaml.safe_load((monorepo / OVERLAY).read_text())
    assert doc["images"][0]["digest"] == DIGEST
    assert not (monorepo / "models/rent/.mlgen/lock.json").exists()
    assert sorted(git(monorepo, "show", "--name-only", "--format=", "HEAD").split()) == [
        ".mlgen/lock.json", OVERLAY]
    code, out, err = call_mlgen(capsys, "-C", str(monorepo), "check")
    assert code == 0, out + err  # the pin is mlgen's own write, not a hand edit
    code, out, err = call_mlgen(capsys, "-C", str(monorepo), "sync")
    assert code == 0, out + err
    assert yaml.safe_load((monorepo / OVERLAY).read_text())["images"][0]["digest"] == DIGEST
