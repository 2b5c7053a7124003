"""`mlgen init --monorepo DIR` writes a root spec that composes with `mlgen init DIR/models/X`:
render at the root, check green, the root spec passes `mlgen schema --root`."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from tests.helpers import run_mlgen


def test_init_monorepo_then_two_models_render_and_check(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    result = run_mlgen("init", "--monorepo", str(repo))
    assert result.returncode == 0, result.stderr
    assert "mlgen.yaml" in result.stdout and ".mlgen/mlgen-root.schema.json" in result.stdout
    for name, task in (("churn", "classification"), ("rent", "regression")):
        made = run_mlgen("init", str(repo / "models" / name), "--name", name, "--task", task,
                         "--non-interactive")
        assert made.returncode == 0, made.stderr
        # discover: already takes the folder, so the hint skips "list it in models:"
        assert "models:" not in made.stderr and "sync" in made.stderr, made.stderr
        assert not (repo / "models" / name / "Jenkinsfile").exists()  # the root renders it
    rendered = run_mlgen("-C", str(repo), "render")
    assert rendered.returncode == 0, rendered.stderr
    for path in ("models/churn/Jenkinsfile", "models/rent/Dockerfile",
                 ".github/workflows/churn-ci.yml", ".github/workflows/rent-ci.yml",
                 ".mlgen/lock.json"):
        assert (repo / path).is_file(), path
    checked = run_mlgen("-C", str(repo), "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    schema = json.loads((repo / ".mlgen/mlgen-root.schema.json").read_text())
    assert schema == json.loads(run_mlgen("schema", "--root").stdout)
    spec = yaml.safe_load((repo / "mlgen.yaml").read_text())
    assert spec == {"apiVersion": "mlgen/v1", "models": {"discover": "models/*"}}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(spec)) == []


def test_init_monorepo_refuses_an_existing_spec(tmp_path: Path) -> None:
    model = tmp_path / "model"
    assert run_mlgen("init", str(model), "--non-interactive").returncode == 0
    before = (model / "mlgen.yaml").read_bytes()
    result = run_mlgen("init", "--monorepo", str(model))
    assert result.returncode == 2
    assert f"{model / 'mlgen.yaml'} already exists; nothing was written" in result.stderr
    assert (model / "mlgen.yaml").read_bytes() == before
    assert not (model / ".mlgen/mlgen-root.schema.json").exists()
    again = tmp_path / "mono"
    assert run_mlgen("init", "--monorepo", str(again)).returncode == 0
    assert run_mlgen("init", "--monorepo", str(again)).returncode == 2


def test_init_monorepo_refuses_model_options_and_nesting(tmp_path: Path) -> None:
    result = run_mlgen("init", "--monorepo", str(tmp_path / "m"), "--name", "x")
    assert result.returncode == 2 and "--name belong to a model" in result.stderr
    assert not (tmp_path / "m").exists()
    assert run_mlgen("init", "--monorepo", str(tmp_path / "m")).returncode == 0
    inner = run_mlgen("init", "--monorepo", str(tmp_path / "m" / "models" / "sub"))
    assert inner.returncode == 2 and "cannot hold another" in inner.stderr
    assert not (tmp_path / "m" / "models" / "sub").exists()


def test_a_listed_folder_not_yet_listed_gets_the_hint(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert run_mlgen("init", "--monorepo", str(repo)).returncode == 0
    (repo / "mlgen.yaml").write_text("apiVersion: mlgen/v1\nmodels: [models/a]\n")
    made = run_mlgen("init", str(repo / "models" / "b"), "--name", "b", "--non-interactive")
    assert made.returncode == 0, made.stderr
    assert "list 'models/b' in its mlgen.yaml models:" in made.stderr
