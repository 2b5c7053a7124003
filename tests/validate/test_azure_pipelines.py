"""The azure-pipelines-schema check: rendered pipelines pass Azure's published schema, broken
ones fail with the file and the line, and `mlgen validate` (and the PR report it feeds)
carries the findings like any other tool's."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from mlgen.publish.github.report import findings_section
from mlgen.validate import azure_pipelines
from mlgen.validate.runner import Layout, workspace_for

from tests.helpers import EXAMPLES, call_mlgen
from tests.targets.azure_pipelines.conftest import hostile_spec, pipeline_text, variant

from .helpers import need, write

# Recorded in tests/reference/README.md with its source: the vendored file is Microsoft's.
SCHEMA_SHA256 = "f00a9630f6550204148634d9a13f634b5750a225559886effe09a751482f0459"
GOOD = (EXAMPLES / "credit-risk" / "azure-pipelines.yml").read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_vendored_schema_is_the_published_one() -> None:
    raw = azure_pipelines.SCHEMA_PATH.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256
    schema = json.loads(raw)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"].startswith("https://github.com/Microsoft/azure-pipelines-vscode/")


@pytest.mark.parametrize("example", ["credit-risk", "house-prices"])
def test_examples_pass(example: str) -> None:
    text = (EXAMPLES / example / "azure-pipelines.yml").read_text(encoding="utf-8")
    assert azure_pipelines.check_text("azure-pipelines.yml", text) == []


@pytest.mark.parametrize("data", [
    pytest.param(variant(**{"drift.current": "data/current.csv"}), id="scheduled-drift"),
    pytest.param(variant(**{"ci.azure.pool": "Linux Agents", "image.pip_index_url":
                            "https://pypi.example.com/simple"}), id="self-hosted-pool"),
    pytest.param(variant(**{"kubernetes.gitops": {"enabled": True,
                                                  "repo_url": "https://example.com/r.git"},
                            "ci.azure.gitops_token_variable": "GITOPS_TOKEN"}), id="gitops"),
    pytest.param(variant(**{"kubernetes.environments": ["prod-eu"], "kubernetes.overlays": {},
                            "kubernetes.challenger": None,
                            "ci.azure.kubernetes_connections": {}}), id="one-environment"),
    pytest.param(hostile_spec(), id="hostile-free-text"),
])
def test_variants_pass(data: dict[str, object]) -> None:
    assert azure_pipelines.check_text("p.yml", pipeline_text(data)) == []


BREAKAGES = [
    # (what is broken, old text, new text, words the finding must hold)
    ("a task version that does not exist", "task: Docker@2", "task: Docker@9", "Docker@9"),
    ("an unknown job key", "timeoutInMinutes: 15", "timeoutInMinute: 15", "timeoutInMinute"),
    ("a task command it does not have", "command: login", "command: signin", "signin"),
    ("an input the task does not take", "containerRegistry: \"acr-push\"",
     "containerRegistryName: \"acr-push\"", "containerRegistryName"),
    ("a stage without jobs", "    jobs:\n      - job: check", "    job:\n      - job: check",
     "job"),
    ("a boolean that is not one", "batch: false", "batch: nope", "nope"),
]


@pytest.mark.parametrize(("old", "new", "words"), [b[1:] for b in BREAKAGES],
                         ids=[b[0] for b in BREAKAGES])
def test_a_broken_pipeline_fails_at_its_line(old: str, new: str, words: str) -> None:
    assert old in GOOD
    broken = GOOD.replace(old, new, 1)
    findings = azure_pipelines.check_text("azure-pipelines.yml", broken)
    assert findings, "the schema check let a broken pipeline through"
    assert all(f.file == "azure-pipelines.yml" and f.tool == "azure-pipelines-schema"
               for f in findings)
    line = line_of(broken, new)
    hits = [f for f in findings if words in f.message]
    assert hits, [f.message for f in findings]
    assert line in {f.line for f in hits}, ([(f.line, f.message) for f in findings], line)


def test_not_yaml_and_empty_are_findings() -> None:
    assert azure_pipelines.check_text("p.yml", "stages: [\n")[0].rule == "yaml"
    assert azure_pipelines.check_text("p.yml", "")[0].message == "the file is empty"


def test_one_broken_step_is_not_a_hundred_findings() -> None:
    broken = re.sub(r"task: (\w+)@\d+", r"task: \1@99", GOOD)
    findings = azure_pipelines.check_text("p.yml", broken)
    assert 1 < len(findings) <= azure_pipelines.MAX_FINDINGS + 1


def test_workspace_groups_the_file_and_actionlint_never_sees_it(tmp_path: Path) -> None:
    layout = Layout(jenkinsfile="Jenkinsfile", workflows=".github/workflows",
                    dockerfile="Dockerfile", kubernetes="k8s",
                    azure_pipelines=".github/workflows/azure.yml")
    paths = [".github/workflows/ci.yml", ".github/workflows/azure.yml"]
    ws = workspace_for(tmp_path, tmp_path, paths, layout, "1.35")
    assert ws.azure_pipelines == (".github/workflows/azure.yml",)
    assert ws.workflows == (".github/workflows/ci.yml",)
    assert set(ws.yaml_files) == set(paths)  # yamllint checks it too


def test_mlgen_validate_reports_it_and_the_pr_report_shows_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "credit-risk"
    shutil.copytree(EXAMPLES / "credit-risk", project)
    args = ["-C", str(project), "validate", "--tool", "azure-pipelines-schema",
            "--format", "json", "--output", str(tmp_path / "report.json")]
    assert call_mlgen(capsys, *args)[0] == 0
    broken = GOOD.replace("task: Docker@2", "task: Docker@9", 1)
    (project / "azure-pipelines.yml").write_text(broken, encoding="utf-8")
    code, _, err = call_mlgen(capsys, *args)
    assert code == 1, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert {(f["file"], f["tool"]) for f in report["findings"]} == {
        ("azure-pipelines.yml", "azure-pipelines-schema")}
    assert line_of(broken, "Docker@9") in {f["line"] for f in report["findings"]}
    section = findings_section(tmp_path / "report.json")
    assert f"`azure-pipelines.yml:{line_of(broken, 'Docker@9')}`" in section


@pytest.mark.slow  # one checkov run (~10 s)
def test_checkov_scans_the_pipeline(tmp_path: Path) -> None:
    """checkov's azure_pipelines framework runs over the file: clean as rendered, and a job
    container on a moving tag is a finding at its job."""
    need("checkov")
    from mlgen.validate import checkov
    from mlgen.validate.model import Workspace

    broken = GOOD.replace("        displayName: mlgen check\n",
                          "        displayName: mlgen check\n        container: python:latest\n", 1)
    write(tmp_path, {"good/azure-pipelines.yml": GOOD, "bad/azure-pipelines.yml": broken})
    ws = Workspace(root=tmp_path, scratch=tmp_path,
                   azure_pipelines=("good/azure-pipelines.yml", "bad/azure-pipelines.yml"))
    findings = checkov.check(ws).findings
    assert {f.file for f in findings} == {"bad/azure-pipelines.yml"}, findings
    assert {f.rule for f in findings} >= {"CKV_AZUREPIPELINES_1"}
    assert {f.line for f in findings} == {line_of(broken, "      - job: check")}
