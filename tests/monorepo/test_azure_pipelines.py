"""Azure Pipelines in a monorepo: the model that opts in (fraud) gets its own pipeline file in
its folder, triggered only by changes there (and by its own NAME-v* tags), with every script
running in the folder and every artifact path starting at it. Read from the rendered example,
parsed as Azure would, and checked against Azure's published schema."""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlgen.monorepo import load_monorepo, render_monorepo, validation_jobs
from mlgen.validate import azure_pipelines
from mlgen.validate.runner import workspace_for

from tests.helpers import EXAMPLES, call_mlgen, run_mlgen

from .conftest import MONOREPO, git

FOLDER = "models/fraud"
PIPELINE = f"{FOLDER}/azure-pipelines.yml"
WORKDIR = f"$(Build.SourcesDirectory)/{FOLDER}"


def pipeline(path: Path = MONOREPO / PIPELINE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def azure_path_match(pattern: str, path: str) -> bool:
    """Azure's path-filter wildcards: `**` crosses folders, `*` and `?` stay inside one."""
    regex = ""
    for token in re.split(r"(\*\*|\*|\?)", pattern):
        regex += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return re.fullmatch(regex, path) is not None


def azure_runs(doc: dict[str, Any], trigger: str, changed: list[str]) -> bool:
    """Whether a branch push ("trigger") or a PR ("pr") touching `changed` starts the run."""
    include = doc[trigger].get("paths", {}).get("include")
    return include is None or any(azure_path_match(p, f) for f in changed for p in include)


def steps(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every step of every job, deployment jobs' strategy steps included."""
    for stage in doc["stages"]:
        for job in stage["jobs"]:
            yield from job.get("steps", [])
            for hook in job.get("strategy", {}).get("runOnce", {}).values():
                yield from hook.get("steps", [])


def conditions(doc: dict[str, Any]) -> list[str]:
    found = []
    for stage in doc["stages"]:
        found.append(stage.get("condition", ""))
        found += [job.get("condition", "") for job in stage["jobs"]]
    return [c for c in found if c]


def test_the_pipeline_file_lives_in_the_model_folder_and_only_there() -> None:
    assert (MONOREPO / PIPELINE).is_file()
    assert not (MONOREPO / "azure-pipelines.yml").exists()
    assert not (MONOREPO / "models/rent/azure-pipelines.yml").exists()  # rent did not opt in


def test_branch_and_pr_triggers_filter_on_the_models_folder() -> None:
    doc = pipeline()
    for trigger in ("trigger", "pr"):
        assert doc[trigger]["branches"] == {"include": ["main"]}
        assert doc[trigger]["paths"] == {"include": [f"{FOLDER}/**"]}
    # The file itself is under the folder: editing it runs it.
    assert azure_path_match(f"{FOLDER}/**", PIPELINE)


def test_a_change_in_one_folder_starts_only_that_models_pipeline() -> None:
    doc = pipeline()
    assert azure_runs(doc, "trigger", ["models/fraud/src/fraud/features.py"])
    assert azure_runs(doc, "pr", ["README.md", "models/fraud/mlgen.yaml"])
    assert not azure_runs(doc, "trigger", ["models/rent/mlgen.yaml", "README.md"])
    assert not azure_runs(doc, "pr", ["docs/readme.md"])
    # A sibling folder whose name starts like this one's is another folder.
    assert not azure_runs(doc, "trigger", ["models/fraud-v2/mlgen.yaml"])


def test_a_release_tag_deploys_only_its_model() -> None:
    doc = pipeline()
    assert doc["trigger"]["tags"] == {"include": ["fraud-v*"]}
    tagged = [c for c in conditions(doc) if "refs/tags/" in c]
    assert tagged and all("'refs/tags/fraud-v'" in c for c in tagged), tagged
    prod = next(s for s in doc["stages"] if s["stage"] == "deploy_prod")
    assert prod["condition"] == ("and(succeeded(), startsWith(variables['Build.SourceBranch'], "
                                 "'refs/tags/fraud-v'))")
    assert [j["environment"] for s in doc["stages"] for j in s["jobs"] if "environment" in j] \
        == ["fraud-dev", "fraud-prod"]


def test_every_script_step_runs_in_the_model_folder() -> None:
    scripts = [s for s in steps(pipeline()) if "bash" in s or "script" in s]
    assert len(scripts) > 10
    assert all(s.get("workingDirectory") == WORKDIR for s in scripts), \
        [s for s in scripts if s.get("workingDirectory") != WORKDIR]


def test_artifact_paths_start_at_the_model_folder() -> None:
    tasks = [s for s in steps(pipeline()) if "task" in s]
    published = {s["inputs"]["artifact"]: s["inputs"]["targetPath"]
                 for s in tasks if s["task"] == "PublishPipelineArtifact@1"}
    assert published == {"validation": f"{FOLDER}/reports", "reports": f"{FOLDER}/reports",
                         "model": f"{FOLDER}/artifacts",
                         "image": f"{FOLDER}/reports/image.json"}
    [results] = [s for s in tasks if s["task"] == "PublishTestResults@2"]
    assert results["inputs"]["testResultsFiles"] == f"{FOLDER}/reports/junit.xml"
    [fetch] = [s for s in tasks if s["task"] == "DownloadPipelineArtifact@2"]
    assert fetch["inputs"]["targetPath"] == f"$(Build.SourcesDirectory)/{FOLDER}/artifacts"
    # The deploy jobs read the digest where `download: current` puts it (outside the sources).
    deploys = [s for s in steps(pipeline()) if "mlgen deploy" in s.get("bash", "")]
    assert deploys and all('"$PIPELINE_WORKSPACE/image/image.json"' in s["bash"] for s in deploys)


def test_a_single_model_pipeline_is_unfiltered_and_runs_at_the_root() -> None:
    doc = pipeline(EXAMPLES / "credit-risk" / "azure-pipelines.yml")
    assert "paths" not in doc["trigger"] and "paths" not in doc["pr"]
    assert doc["trigger"]["tags"] == {"include": ["v*"]}
    assert not [s for s in steps(doc) if "workingDirectory" in s]
    assert all("'refs/tags/v'" in c for c in conditions(doc) if "refs/tags/" in c)


def test_the_rendered_pipeline_passes_azures_schema() -> None:
    text = (MONOREPO / PIPELINE).read_text(encoding="utf-8")
    assert azure_pipelines.check_text(PIPELINE, text) == []


def test_validate_checks_the_models_pipeline_file(tmp_path: Path) -> None:
    jobs = {layout.azure_pipelines: workspace_for(MONOREPO, tmp_path, [a.path for a in mine],
                                                  layout, "1.30.0").azure_pipelines
            for mine, layout in validation_jobs(MONOREPO, MONOREPO)}
    assert jobs == {PIPELINE: (PIPELINE,), "models/rent/azure-pipelines.yml": ()}


def test_mlgen_validate_runs_the_schema_check_from_the_root_and_the_folder(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import json

    counts = {}
    for where in (MONOREPO, MONOREPO / FOLDER, MONOREPO / "models/rent"):
        report = tmp_path / "report.json"
        code, out, err = call_mlgen(capsys, "-C", str(where), "validate",
                                    "--tool", "azure-pipelines-schema", "--require-all",
                                    "--format", "json", "--output", str(report))
        assert code == 0, out + err
        runs = {t["tool"]: t for t in json.loads(report.read_text())["tools"]}
        counts[where.name] = runs["azure-pipelines-schema"]["files"]
    assert counts == {"monorepo": 1, "fraud": 1, "rent": 0}


def variant_monorepo(tmp_path: Path, **azure_keys: Any) -> Path:
    """The example with fraud's spec changed: drift on a schedule, GitOps, ci.azure keys."""
    root = tmp_path / "repo"
    shutil.copytree(MONOREPO, root, ignore=shutil.ignore_patterns("__pycache__"))
    spec_path = root / FOLDER / "mlgen.yaml"
    data = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    data["drift"] = {**data.get("drift", {}), "current": "data/current.csv"}
    data["kubernetes"]["gitops"] = {"enabled": True,
                                    "repo_url": "https://github.com/bank-ml/models.git"}
    data["ci"]["azure"].update(azure_keys)
    spec_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return root


def rendered(root: Path, path: str) -> str:
    [artifact] = [a for a in render_monorepo(load_monorepo(root)) if a.path == path]
    return artifact.text


def test_drift_and_gitops_jobs_run_in_the_folder_too(tmp_path: Path) -> None:
    text = rendered(variant_monorepo(tmp_path), PIPELINE)
    assert azure_pipelines.check_text(PIPELINE, text) == []
    doc = yaml.safe_load(text)
    assert "paths" not in doc["schedules"][0]  # the schedule runs whatever changed
    scripts = [s for s in steps(doc) if "bash" in s]
    assert any("mlgen drift" in s["bash"] for s in scripts)
    assert any("mlgen gitops pin" in s["bash"] for s in scripts)
    assert all(s.get("workingDirectory") == WORKDIR for s in scripts)
    published = [s["inputs"]["targetPath"] for s in steps(doc)
                 if s.get("task") == "PublishPipelineArtifact@1"]
    assert all(p.startswith(f"{FOLDER}/") for p in published), published


def test_a_pipeline_file_outside_the_folder_is_in_its_own_path_filter(tmp_path: Path) -> None:
    # `.github/` files keep their root path (monorepo.ROOT_ONLY_PREFIXES).
    root = variant_monorepo(tmp_path, path=".github/azure/fraud.yml")
    doc = yaml.safe_load(rendered(root, ".github/azure/fraud.yml"))
    assert doc["trigger"]["paths"]["include"] == [f"{FOLDER}/**", ".github/azure/fraud.yml"]
    assert doc["pr"]["paths"] == doc["trigger"]["paths"]
    # It is still fraud's file: `mlgen validate` checks it with fraud's layout.
    mono = load_monorepo(root)
    assert mono.model_for(".github/azure/fraud.yml") is mono.models[0]
    [(mine, layout)] = validation_jobs(root, root / FOLDER)
    checked = workspace_for(root, tmp_path, [a.path for a in mine], layout, "1.30.0")
    assert checked.azure_pipelines == (".github/azure/fraud.yml",)
    assert ".github/azure/fraud.yml" not in checked.workflows


def test_check_is_green_after_render_and_names_a_missing_pipeline(monorepo: Path) -> None:
    (monorepo / PIPELINE).unlink()
    missing = run_mlgen("check", cwd=monorepo, check=False)
    assert missing.returncode == 1 and PIPELINE in missing.stdout + missing.stderr
    run_mlgen("render", cwd=monorepo)
    assert run_mlgen("check", cwd=monorepo, check=False).returncode == 0
    assert git(monorepo, "status", "--porcelain") == ""  # the same bytes as committed
