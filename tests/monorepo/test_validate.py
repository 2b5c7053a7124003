"""`mlgen validate` on the example monorepo: actionlint and yamllint pass over every model's
workflows (path filters, working directories), and from a model's folder only that model's
files are checked. (tests/validate/test_cli.py runs every tool over the example too.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import call_mlgen
from tests.validate.helpers import need

from .conftest import MONOREPO


def validate(capsys: pytest.CaptureFixture[str], where: Path, tmp_path: Path) -> dict:
    report = tmp_path / "report.json"
    code, out, err = call_mlgen(capsys, "-C", str(where), "validate", "--require-all",
                                "--tool", "actionlint", "--tool", "yamllint",
                                "--format", "json", "--output", str(report))
    assert code == 0, out + err
    return json.loads(report.read_text())


def test_actionlint_and_yamllint_pass_on_every_models_workflows(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    need("yamllint", "node", node_module="actionlint")
    report = validate(capsys, MONOREPO, tmp_path)
    assert report["clean"] is True
    runs = {t["tool"]: t for t in report["tools"]}
    assert runs["actionlint"]["status"] == "ran"
    assert runs["actionlint"]["files"] == 6  # ci, cd and drift of both models


def test_from_a_model_folder_only_that_models_files_are_checked(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    need("yamllint", "node", node_module="actionlint")
    report = validate(capsys, MONOREPO / "models" / "rent", tmp_path)
    runs = {t["tool"]: t for t in report["tools"]}
    assert runs["actionlint"]["files"] == 3
