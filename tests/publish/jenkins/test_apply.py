"""`mlgen jenkins plan/apply/prune` against the emulator, through the real python-jenkins client."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jenkins
import pytest
from mlgen.targets.jenkins_job import normalise_xml

from tests.emulators.jenkins import JenkinsEmulator
from tests.helpers import call_mlgen

from .conftest import ADMIN_TOKEN, index_now, write_spec

JOB = "ml/retail/credit-risk"


def plan_json(capsys: pytest.CaptureFixture[str], repo: Path, *extra: str) -> dict:
    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "plan", "--json", *extra)
    assert code == 0, out
    return json.loads(out)


def posts(emulator: JenkinsEmulator) -> int:
    return emulator.state.stats["POST"]


def test_apply_creates_folders_and_job_then_changes_nothing(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo, api_url="https://github.bank.internal/api/v3",
               description="Risk <model> & \"friends\" ]]> 'quoted'")
    planned = plan_json(capsys, repo)
    assert planned["folders"] == ["ml", "ml/retail"]
    assert [(j["name"], j["action"]) for j in planned["jobs"]] == [(JOB, "create")]
    assert jenkins_env.state.find(["ml"]) is None  # plan changed nothing

    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")
    assert code == 0, out
    item = jenkins_env.state.find(["ml", "retail", "credit-risk"])
    assert item is not None and item.kind == "multibranch"
    root = ET.fromstring(item.xml)
    source = root.find(".//source")
    assert source is not None
    assert source.get("class") == "org.jenkinsci.plugins.github_branch_source.GitHubSCMSource"
    assert source.findtext("apiUri") == "https://github.bank.internal/api/v3"
    assert (
        source.findtext("repoOwner") == "bank-ml" and source.findtext("repository") == "credit-risk"
    )
    assert source.findtext("credentialsId") == "github-app"
    assert root.findtext("factory/scriptPath") == "Jenkinsfile"
    description = root.findtext("description") or ""
    assert description.startswith("Risk <model> & \"friends\" ]]> 'quoted'")
    assert "[mlgen source=bank-ml/credit-risk config=" in description

    before = dict(jenkins_env.state.stats)
    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")
    assert code == 0 and "0 job(s) created, 0 reconfigured; 1 request(s)" in out
    assert jenkins_env.state.stats["total"] - before["total"] == 1  # one config read per job
    assert jenkins_env.state.stats["POST"] == before["POST"]


def test_spec_change_is_planned_as_an_xml_diff_and_applied(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo)
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")[0] == 0
    write_spec(repo, jenkinsfile="ci/Jenkinsfile")
    planned = plan_json(capsys, repo)
    change = planned["jobs"][0]
    assert change["action"] == "update" and not change["edited_on_server"]
    assert "-    <scriptPath>Jenkinsfile</scriptPath>" in change["diff"]
    assert "+    <scriptPath>ci/Jenkinsfile</scriptPath>" in change["diff"]
    posts_before = posts(jenkins_env)
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")[0] == 0
    assert posts(jenkins_env) == posts_before + 1  # exactly the one reconfiguration
    assert plan_json(capsys, repo)["counts"]["unchanged"] == 1


def test_ui_edit_is_detected_reported_and_overwritten(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo)
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply", "--cache")[0] == 0
    client = jenkins.Jenkins(jenkins_env.url, "admin", ADMIN_TOKEN)
    live = client.get_job_config(JOB)
    client.reconfig_job(
        JOB, live.replace("<credentialsId>github-app<", "<credentialsId>hand-made<")
    )

    # The cache alone cannot see it (no request is made), --refresh does.
    cached = plan_json(capsys, repo, "--cache")
    assert cached["jobs"][0]["cached"] and cached["requests"] == 0
    planned = plan_json(capsys, repo, "--cache", "--refresh")
    assert planned["jobs"][0]["action"] == "update" and planned["jobs"][0]["edited_on_server"]
    code, _, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "apply", "--refresh")
    assert code == 0 and f"job {JOB} was changed on Jenkins since mlgen applied it" in err
    assert "<credentialsId>github-app<" in client.get_job_config(JOB)


def test_cache_makes_unchanged_reapply_free_and_spec_changes_still_read(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo)
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply", "--cache")[0] == 0
    total = jenkins_env.state.stats["total"]
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply", "--cache")[0] == 0
    assert jenkins_env.state.stats["total"] == total
    write_spec(repo, description="new words")
    planned = plan_json(capsys, repo, "--cache")
    assert planned["jobs"][0]["action"] == "update" and planned["requests"] == 1


def test_prune_deletes_exactly_what_it_listed_and_cache_forgets(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo, jenkins_folder="ml/old")
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply", "--cache")[0] == 0
    other = tmp_path / "other"
    write_spec(other, "churn", repository="bank-ml/churn")
    assert call_mlgen(capsys, "-C", str(other), "jenkins", "apply")[0] == 0
    client = jenkins.Jenkins(jenkins_env.url, "admin", ADMIN_TOKEN)
    client.create_job(
        "ml/hand-made", "<flow-definition><description>x</description></flow-definition>"
    )

    write_spec(repo, jenkins_folder="ml/new")  # the job moves
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply", "--cache")[0] == 0
    for project in ("ml/new/credit-risk", "ml/retail/churn"):
        index_now(jenkins_env, project)  # branch jobs: made by Jenkins, unmarked, never pruned
    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "prune", "--json")
    listed = json.loads(out)
    assert code == 0 and listed == {"dry_run": True, "jobs": ["ml/old/credit-risk"]}
    assert client.job_exists("ml/old/credit-risk")  # dry run by default
    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "prune", "--yes")
    assert code == 0 and "- deleted ml/old/credit-risk" in out
    remaining = {j["fullname"] for j in client.get_all_jobs()}
    assert remaining == {"ml", "ml/old", "ml/new", "ml/new/credit-risk", "ml/new/credit-risk/main",
                         "ml/retail", "ml/retail/churn", "ml/retail/churn/main", "ml/hand-made"}
    # Moving back re-creates it: the pruned job's cache entry is gone (JJB would skip it).
    write_spec(repo, jenkins_folder="ml/old")
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply", "--cache")[0] == 0
    assert client.job_exists("ml/old/credit-risk")


def test_existing_unmarked_job_is_a_conflict_until_adopted(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo, jenkins_folder=None)
    client = jenkins.Jenkins(jenkins_env.url, "admin", ADMIN_TOKEN)
    client.create_job("credit-risk",
                      "<org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject/>")
    code, _, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")
    assert code == 1 and "job credit-risk: exists on Jenkins without mlgen's marker" in err
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply", "--adopt")[0] == 0
    assert "[mlgen source=" in client.get_job_config("credit-risk")


def test_pipeline_kind_and_fleet(jenkins_env: JenkinsEmulator, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        write_spec(tmp_path / f"m{i}", f"model-{i}", repository=f"bank-ml/model-{i}",
                   jenkins_folder=f"ml/team-{i % 2}", kind="pipeline" if i == 2 else "multibranch")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("concurrency: 2\nrepositories:\n  - m0/mlgen.yaml\n  - path: m1\n  - m2\n")
    code, out, err = call_mlgen(capsys, "jenkins", "apply", "--fleet", str(fleet))
    assert code == 0, err
    assert "ml/team-0/model-0  bank-ml/model-0  created" in out
    assert "3 job(s) created" in out and "3 folder(s)" in out
    item = jenkins_env.state.find(["ml", "team-0", "model-2"])
    assert item is not None and item.root_tag == "flow-definition"
    root = ET.fromstring(item.xml)
    assert root.findtext(".//userRemoteConfigs/hudson.plugins.git.UserRemoteConfig/url") == \
        "https://github.com/bank-ml/model-2.git"
    assert root.findtext(".//branches/hudson.plugins.git.BranchSpec/name") == "*/main"
    code, out, _ = call_mlgen(capsys, "jenkins", "plan", "--fleet", str(fleet), "--json")
    assert json.loads(out)["counts"] == {"folders": 0, "create": 0, "update": 0, "unchanged": 3,
                                         "conflict": 0}
    # Two repositories claiming one job name is refused, naming both.
    write_spec(tmp_path / "m1", "model-0", repository="bank-ml/model-1", jenkins_folder="ml/team-0")
    code, _, err = call_mlgen(capsys, "jenkins", "plan", "--fleet", str(fleet))
    assert code == 1 and "bank-ml/model-0 and bank-ml/model-1" in err


def test_normalised_comparison_ignores_what_jenkins_rewrites() -> None:
    a = "<?xml version='1.0'?><a plugin='x' b='1'>\n  <c> t </c>\n<d/></a>"
    b = "<?xml version='1.1' encoding='UTF-8'?>\n<a b=\"1\" plugin=\"x@1.2.3\"><c>t</c><d></d></a>"
    assert normalise_xml(a) == normalise_xml(b)
    assert normalise_xml(a) != normalise_xml(b.replace("<c>t</c>", "<c>u</c>"))
    # What a Declarative Jenkinsfile writes into its Pipeline job when it runs is its own.
    bare = "<flow-definition><properties/><x>1</x></flow-definition>"
    after_build = ("<flow-definition><properties><hudson.model.ParametersDefinitionProperty>"
                   "<parameterDefinitions/></hudson.model.ParametersDefinitionProperty>"
                   "</properties><x>1</x></flow-definition>")
    assert normalise_xml(bare) == normalise_xml(after_build)


def test_missing_repository_names_the_spec_key(jenkins_env: JenkinsEmulator, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo, repository=None)
    code, _, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "plan")
    assert code == 2 and "ci.github.repository" in err and "mlgen.yaml" in err


def test_the_scheduled_monitor_gets_its_own_pipeline_job_and_prune_keeps_it(
        jenkins_env: JenkinsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With monitor.predictions set the pipelines render Jenkinsfile.monitor; apply registers a
    Pipeline job for it beside the model's multibranch job (a multibranch project would run its
    cron on every branch), and prune keeps it until the spec stops rendering it."""
    import yaml

    repo = tmp_path / "repo"
    spec_file = write_spec(repo)
    doc = yaml.safe_load(spec_file.read_text())
    doc["monitor"] = {"predictions": "data/predictions"}
    spec_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    planned = plan_json(capsys, repo)
    assert [(j["name"], j["action"]) for j in planned["jobs"]] == [
        (JOB, "create"), (JOB + "-monitor", "create")]

    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")
    assert code == 0, out
    item = jenkins_env.state.find(["ml", "retail", "credit-risk-monitor"])
    assert item is not None and item.kind == "job"  # the emulator's name for a Pipeline job
    root = ET.fromstring(item.xml)
    assert root.tag == "flow-definition"
    assert root.findtext(".//scriptPath") == "Jenkinsfile.monitor"
    assert root.findtext(".//branches/hudson.plugins.git.BranchSpec/name") == "*/main"
    assert root.findtext(".//userRemoteConfigs//url") == "https://github.com/bank-ml/credit-risk.git"
    description = root.findtext("description") or ""
    assert "starts ml/retail/credit-risk/main on a real drop" in description
    assert plan_json(capsys, repo)["counts"]["unchanged"] == 2

    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "prune", "--json")
    assert code == 0 and json.loads(out)["jobs"] == []
    del doc["monitor"]
    spec_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "prune", "--json")
    assert code == 0 and json.loads(out)["jobs"] == [JOB + "-monitor"]
