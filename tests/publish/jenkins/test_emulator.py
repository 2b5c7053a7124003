"""The emulator answers the real python-jenkins client as the reference page says Jenkins does."""
from __future__ import annotations

import time

import jenkins
import pytest
import requests

from tests.emulators.jenkins import JenkinsEmulator

from .conftest import ADMIN_TOKEN

PIPELINE = ("<flow-definition plugin='workflow-job'><description>d</description>"
            "<keepDependencies>false</keepDependencies></flow-definition>")


def admin(emu: JenkinsEmulator) -> jenkins.Jenkins:
    return jenkins.Jenkins(emu.url, "admin", ADMIN_TOKEN, timeout=5)


def test_version_header_and_whoami(emulator: JenkinsEmulator) -> None:
    client = admin(emulator)
    assert client.get_whoami()["id"] == "admin"
    assert client.get_version() == "2.479.3"


def test_folders_jobs_config_roundtrip_and_delete(emulator: JenkinsEmulator) -> None:
    client = admin(emulator)
    client.create_folder("ml")
    client.create_folder("ml/retail")
    client.create_job("ml/retail/a", PIPELINE)
    assert client.job_exists("ml/retail/a")
    assert client.is_folder("ml/retail")
    stored = client.get_job_config("ml/retail/a")
    # Jenkins re-serialises: XML 1.1 declaration and plugin versions.
    assert stored.startswith("<?xml version='1.1'")
    assert 'plugin="workflow-job@' in stored
    client.reconfig_job("ml/retail/a", PIPELINE.replace(">d<", ">changed<"))
    assert "<description>changed</description>" in client.get_job_config("ml/retail/a")
    names = {j["fullname"] for j in client.get_all_jobs()}
    assert names == {"ml", "ml/retail", "ml/retail/a"}
    client.delete_job("ml/retail/a")
    assert not client.job_exists("ml/retail/a")
    with pytest.raises(jenkins.JenkinsException, match="already exists"):
        client.create_job("ml", PIPELINE)
    with pytest.raises(jenkins.JenkinsException, match="folder for the job does not exist"):
        client.create_job("missing/x", PIPELINE)


def test_bad_xml_and_wrong_root_are_refused(emulator: JenkinsEmulator) -> None:
    client = admin(emulator)
    with pytest.raises(jenkins.JenkinsException, match=r"(?s)\[500\].*Unable to read"):
        client.create_job("broken", "<flow-definition>")
    with pytest.raises(jenkins.JenkinsException, match="unknown root element <nonsense>"):
        client.create_job("odd", "<nonsense/>")
    client.create_job("a", PIPELINE)
    with pytest.raises(jenkins.JenkinsException, match="expecting <flow-definition>"):
        client.reconfig_job("a", "<com.cloudbees.hudson.plugins.folder.Folder/>")
    assert not client.job_exists("broken")


def test_tree_and_views_on_root(emulator: JenkinsEmulator) -> None:
    client = admin(emulator)
    client.create_folder("f")
    client.create_job("f/j", PIPELINE)
    root = requests.get(emulator.url + "api/json", auth=("admin", ADMIN_TOKEN), timeout=5).json()
    assert root["views"][0]["name"] == "all"  # jenkins-job-builder reads this key
    tree = requests.get(emulator.url + "api/json?tree=jobs[name,jobs[name,color]]",
                        auth=("admin", ADMIN_TOKEN), timeout=5).json()
    assert tree["jobs"] == [{"_class": "com.cloudbees.hudson.plugins.folder.Folder", "name": "f",
                             "jobs": [{"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
                                       "name": "j", "color": "notbuilt"}]}]


def test_csrf_crumb_needed_for_password_posts_not_for_tokens(emulator: JenkinsEmulator) -> None:
    url = emulator.url + "createItem?name=x"
    headers = {"Content-Type": "text/xml"}
    no_crumb = requests.post(url, data=PIPELINE, headers=headers, auth=("admin", "admin-password"),
                             timeout=5)
    assert no_crumb.status_code == 403 and "No valid crumb" in no_crumb.text
    by_token = requests.post(url, data=PIPELINE, headers=headers, auth=("admin", ADMIN_TOKEN),
                             timeout=5)
    assert by_token.status_code == 200
    # python-jenkins with a password fetches the crumb itself and succeeds.
    jenkins.Jenkins(emulator.url, "admin", "admin-password").create_job("y", PIPELINE)
    assert emulator.state.find(["y"]) is not None


def test_auth_errors_as_jenkins_answers_them(emulator: JenkinsEmulator) -> None:
    with pytest.raises(jenkins.JenkinsException, match=r"\[401\]"):
        jenkins.Jenkins(emulator.url, "admin", "wrong").get_all_jobs()
    with pytest.raises(jenkins.JenkinsException, match="anonymous is missing the Overall/Read"):
        jenkins.Jenkins(emulator.url).get_all_jobs()
    with pytest.raises(jenkins.JenkinsException, match="reader is missing the Job/Create"):
        jenkins.Jenkins(emulator.url, "reader", "reader-token").create_job("z", PIPELINE)
    denied = requests.get(emulator.url + "api/json", auth=("nobody", "nobody-token"), timeout=5)
    assert denied.headers["X-Required-Permission"] == "hudson.model.Hudson.Read"
    assert denied.headers["X-Jenkins"]


def test_build_with_parameters_queue_build_console(emulator: JenkinsEmulator) -> None:
    client = admin(emulator)
    client.create_job("p", PIPELINE)
    requests.post(emulator.url + "_emulator/next-result", json={"job": "p", "result": "FAILURE"},
                  timeout=5)
    number = client.build_job("p", {"REASON": "drift"})
    item = client.get_queue_item(number)
    while not item.get("executable"):
        time.sleep(0.02)
        item = client.get_queue_item(number)
    build = item["executable"]["number"]
    info = client.get_build_info("p", build)
    while info["building"]:
        time.sleep(0.02)
        info = client.get_build_info("p", build)
    assert info["result"] == "FAILURE"
    assert info["actions"][0]["parameters"] == [
        {"_class": "hudson.model.StringParameterValue", "name": "REASON", "value": "drift"}]
    console = client.get_build_console_output("p", build)
    assert "REASON = drift" in console and console.endswith("Finished: FAILURE\n")
    assert client.get_job_info("p")["nextBuildNumber"] == build + 1


def test_multibranch_branches_exist_only_after_a_scan(emulator: JenkinsEmulator) -> None:
    emulator.state.scan_seconds = 0.2
    client = admin(emulator)
    client.create_job(
        "mb", "<org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject/>"
    )
    assert not client.job_exists("mb/main")  # createItem does not index (ComputedFolder)
    with pytest.raises(jenkins.NotFoundException):
        client.build_job("mb/main")
    # "Scan Multibranch Pipeline Now" is the project's build: a redirect back, no queue item.
    with pytest.raises(jenkins.EmptyResponseException, match="Location"):
        client.build_job("mb")
    assert not client.job_exists("mb/main")  # the scan takes a while
    scans = requests.get(emulator.url + "_emulator/state", timeout=5).json()["items"]["mb"]["scans"]
    assert scans == [{"user": "admin", "finished": False, "found": []}]
    time.sleep(0.25)
    assert client.job_exists("mb/main") and not client.job_exists("mb/feature")
    assert client.build_job("mb/main", {"A": "1"}) >= 1
    log = requests.get(emulator.url + "job/mb/indexing/consoleText", timeout=5,
                       auth=("admin", ADMIN_TOKEN)).text
    assert "Checking branch main" in log and log.endswith("Finished: SUCCESS\n")
    # Folders and branch jobs have no scan; multibranch projects have no buildWithParameters.
    client.create_folder("f")
    with pytest.raises(jenkins.NotFoundException):
        client.build_job("f")
    with pytest.raises(jenkins.NotFoundException):
        client.build_job("mb", {"A": "1"})


def test_indexing_knob_sets_branches_and_indexes_at_once(emulator: JenkinsEmulator) -> None:
    client = admin(emulator)
    client.create_job(
        "mb", "<org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject/>"
    )
    answer = requests.post(emulator.url + "_emulator/indexing", timeout=5, json={
        "branches": ["main", "release"], "scan_seconds": 60, "index_now": "mb"})
    assert answer.json() == {"branches": ["main", "release"], "scan_seconds": 60.0}
    assert client.job_exists("mb/main") and client.job_exists("mb/release")
    missing = requests.post(emulator.url + "_emulator/indexing", timeout=5,
                            json={"index_now": "nope"})
    assert missing.status_code == 404


def test_fault_injection_and_stats(emulator: JenkinsEmulator) -> None:
    client = admin(emulator)
    client.get_whoami()  # fetches the crumb first, so the faults below hit the listing
    requests.post(emulator.url + "_emulator/reset-stats", timeout=5)
    requests.post(emulator.url + "_emulator/faults", timeout=5, json={
        "latency_ms": 1, "rules": [{"status": 503, "count": 1}, {"drop": True, "count": 1}]})
    with pytest.raises(jenkins.BadHTTPException):  # python-jenkins retries nothing
        client.get_all_jobs()
    with pytest.raises(requests.ConnectionError):
        client.get_all_jobs()
    assert client.get_all_jobs() == []
    stats = requests.get(emulator.url + "_emulator/stats", timeout=5).json()
    assert stats["total"] == 3 and stats["GET"] == 3
    state = requests.get(emulator.url + "_emulator/state", timeout=5).json()
    assert state == {"items": {}, "queue": []}
