"""The root mlgen.yaml: which folders it lists, and bad root specs named by file, key and line
(exit 2) before anything renders."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlgen.errors import SpecError
from mlgen.monorepo import is_monorepo, is_root_spec_text, load_monorepo

from tests.helpers import call_mlgen

from .conftest import MODELS, MONOREPO


def test_the_example_lists_two_models_in_order() -> None:
    mono = load_monorepo(MONOREPO)
    assert mono.folders == tuple(MODELS.values())
    assert [m.spec.name for m in mono.models] == list(MODELS)


def test_a_root_spec_is_told_apart_from_a_model_spec() -> None:
    assert is_monorepo(MONOREPO)
    assert not is_monorepo(MONOREPO / "models" / "fraud")
    assert is_root_spec_text((MONOREPO / "mlgen.yaml").read_text())
    assert not is_root_spec_text((MONOREPO / "models/fraud/mlgen.yaml").read_text())


def test_discover_finds_every_folder_with_a_spec(monorepo: Path) -> None:
    (monorepo / "mlgen.yaml").write_text('apiVersion: mlgen/v1\nmodels: {discover: "models/*"}\n')
    (monorepo / "models" / "notes").mkdir()  # no mlgen.yaml: not a model
    assert load_monorepo(monorepo).folders == ("models/fraud", "models/rent")


BAD = [
    ("models: [models/fraud, ../elsewhere]", "models[1]", 2, "no leading '/', no '.' or '..'"),
    ("models: [/abs/fraud]", "models[0]", 2, "relative to the repository root"),
    ("models: [models/fraud, models/fraud/]", "models[1]", 2, "listed twice"),
    ("models: [models/fraud, models/nope]", "models[1]", 2, "has no mlgen.yaml"),
    ("models:\n  - models/fraud\n  - 'models/rent; rm -rf /'", "models[1]", 4,
     "no spaces or shell characters"),
    ("models: [models/fraud]\nmodel: {}", "model", 3, "unknown key 'model' in a root spec"),
    ("models: {discover: 'nothing/*'}", "models.discover", 2, "no folder matching"),
    ("models: {discover: '../*'}", "models.discover", 2, "relative glob"),
    ("models: {find: 'models/*'}", "models.find", 2, "unknown key 'find'"),
    ("models: []", "models", 2, "lists no model folder"),
    ("models: models/fraud", "models", 2, "must be a list of model folders"),
]


@pytest.mark.parametrize(("body", "key", "line", "message"), BAD,
                         ids=[b[1] + ":" + b[3][:20] for b in BAD])
def test_bad_root_spec_names_file_key_and_line(monorepo: Path, body: str, key: str, line: int,
                                               message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (monorepo / "mlgen.yaml").write_text(f"apiVersion: mlgen/v1\n{body}\n")
    with pytest.raises(SpecError) as caught:
        load_monorepo(monorepo)
    issue = next(i for i in caught.value.issues if i.path == key)
    assert (issue.file, issue.line) == (str(monorepo / "mlgen.yaml"), line)
    assert message in issue.message
    code, _, err = call_mlgen(capsys, "-C", str(monorepo), "check")
    assert code == 2
    assert f"{monorepo / 'mlgen.yaml'}:{line}:" in err and key in err


def test_nested_model_folders_are_refused(monorepo: Path) -> None:
    (monorepo / "models/fraud/inner").mkdir()
    (monorepo / "models/fraud/inner/mlgen.yaml").write_text(
        (monorepo / "models/rent/mlgen.yaml").read_text().replace("name: rent", "name: inner"))
    (monorepo / "mlgen.yaml").write_text(
        "apiVersion: mlgen/v1\nmodels: [models/fraud, models/fraud/inner]\n")
    with pytest.raises(SpecError, match="nested"):
        load_monorepo(monorepo)


def test_two_models_with_one_name_are_refused(monorepo: Path) -> None:
    spec = monorepo / "models/rent/mlgen.yaml"
    spec.write_text(spec.read_text().replace("name: rent", "name: fraud"))
    with pytest.raises(SpecError) as caught:
        load_monorepo(monorepo)
    issue = caught.value.issues[0]
    assert (issue.path, issue.line) == ("models[1]", 8)
    assert "name 'fraud'" in issue.message and "models/fraud/mlgen.yaml" in issue.message


def test_a_bad_model_spec_is_named_by_its_own_file(monorepo: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = monorepo / "models/rent/mlgen.yaml"
    spec.write_text(spec.read_text().replace("autoscaling: {enabled: false}", "prot: 1"))
    code, _, err = call_mlgen(capsys, "-C", str(monorepo), "sync")
    assert code == 2
    assert "models/rent/mlgen.yaml:32:" in err and "serve.prot" in err


def test_per_model_commands_at_the_root_say_to_pick_a_model(
        monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call_mlgen(capsys, "-C", str(monorepo), "run", "train")
    assert code == 2 and "-C MODEL_FOLDER" in err


def test_a_broken_root_spec_is_reported_from_a_model_folder_too(
        monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (monorepo / "mlgen.yaml").write_text("apiVersion: mlgen/v1\nmodels: [models/fraud, gone]\n")
    code, _, err = call_mlgen(capsys, "-C", str(monorepo / "models/fraud"), "check")
    assert code == 2 and f"{monorepo / 'mlgen.yaml'}:2:" in err and "'gone' has no" in err


def test_a_discovered_folder_is_held_to_the_listed_folders_names(
        monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Folders reach CI files (path filters, Azure's workingDirectory, `cd` in Jenkins): one
    # named like an Azure macro or a shell command is refused, as it is when listed.
    hostile = monorepo / "models" / "x $(System.AccessToken)"
    hostile.mkdir()
    (hostile / "mlgen.yaml").write_text(
        (monorepo / "models/rent/mlgen.yaml").read_text().replace("name: rent", "name: x"))
    (monorepo / "mlgen.yaml").write_text('apiVersion: mlgen/v1\nmodels: {discover: "models/*"}\n')
    with pytest.raises(SpecError) as caught:
        load_monorepo(monorepo)
    [issue] = caught.value.issues
    assert (issue.path, issue.line) == ("models.discover", 2)
    assert "x $(System.AccessToken)" in issue.message and "shell characters" in issue.message
    code, _, err = call_mlgen(capsys, "-C", str(monorepo), "check")
    assert code == 2 and "models.discover" in err
