"""Retries on 5xx and dropped connections, 401/403 messages, the token kept secret, trigger."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlgen.errors import UsageError
from mlgen.integrations.jenkins import Connection, JenkinsClient, JenkinsError, connection_from

from tests.emulators.jenkins import JenkinsEmulator
from tests.helpers import call_mlgen

from .conftest import ADMIN_TOKEN, write_spec

JOB = "ml/retail/credit-risk"


def client(emu: JenkinsEmulator, user: str = "admin", token: str = ADMIN_TOKEN,
           retries: int = 3) -> JenkinsClient:
    return JenkinsClient(Connection(emu.url, user, token, retries=retries, backoff=0.01, timeout=5))


def test_5xx_and_dropped_connections_are_retried(emulator: JenkinsEmulator) -> None:
    c = client(emulator)
    emulator.state.faults.rules = [{"status": 503, "count": 2}, {"drop": True, "count": 1}]
    assert c.get_config("nothing-here") is None
    assert c.requests_made == 4  # 503, 503, dropped, then the 404 answer
    emulator.state.faults.rules = [{"status": 502, "count": 5}]
    with pytest.raises(JenkinsError, match=r"job x: read config failed on the server \(502\) "
                                           r"after 3 attempts"):
        client(emulator, retries=2).get_config("x")


def test_a_build_is_not_started_twice_after_a_dropped_answer(emulator: JenkinsEmulator) -> None:
    c = client(emulator)
    c.create_item("p", "<flow-definition/>")
    emulator.state.faults.rules = [{"drop": True, "count": 1, "path": "build"}]
    with pytest.raises(JenkinsError, match="job p: build failed: cannot reach"):
        c.build("p", {"A": "1"})
    assert len(emulator.state.queue) == 0  # dropped before handling here, but never retried


def test_401_and_403_name_the_job_and_the_missing_permission(emulator: JenkinsEmulator) -> None:
    with pytest.raises(JenkinsError) as bad_token:
        client(emulator, token="s3cret-wrong-token").get_config("ml/a")
    message = str(bad_token.value)
    assert "job ml/a" in message and "(401)" in message and "s3cret" not in message
    assert message.endswith("check JENKINS_USER and JENKINS_API_TOKEN")
    with pytest.raises(JenkinsError, match=r"job a: create refused \(403\): user 'reader' is "
                                           r"missing the Job/Create permission"):
        client(emulator, "reader", "reader-token").create_item("a", "<flow-definition/>")
    with pytest.raises(JenkinsError, match="missing the Overall/Read permission"):
        client(emulator, "nobody", "nobody-token").list_items()
    client(emulator).create_item("gone", "<flow-definition/>")
    with pytest.raises(JenkinsError, match="job gone: delete refused .*Job/Delete permission"):
        client(emulator, "no-delete", "no-delete-token").delete("gone")


def test_password_instead_of_token_still_works_through_the_crumb(emulator: JenkinsEmulator) -> None:
    c = client(emulator, token="admin-password")
    c.create_item("via-password", "<flow-definition/>")
    assert emulator.state.find(["via-password"]) is not None


def test_connection_settings_precedence_and_secret_urls() -> None:
    env = {
        "JENKINS_URL": "https://env.example",
        "JENKINS_USER": "u",
        "JENKINS_API_TOKEN": "tok-123",
    }
    conn = connection_from(
        url=None, user=None, token=None, spec_url="https://spec.example", env=env
    )
    assert conn.url == "https://env.example/" and conn.user == "u" and "tok-123" not in repr(conn)
    assert connection_from(url=None, user=None, token=None, spec_url="https://spec.example",
                           env={}).url == "https://spec.example/"
    with pytest.raises(UsageError) as exc:
        connection_from(url="https://u:hunter2@host", user=None, token=None, spec_url=None, env={})
    assert "hunter2" not in str(exc.value)


def test_cli_errors_never_print_the_token(jenkins_env: JenkinsEmulator, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    write_spec(repo)
    monkeypatch.setenv("JENKINS_API_TOKEN", "very-secret-token-value")
    code, out, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")
    assert code == 1 and f"job {JOB}" in err and "(401)" in err
    assert "very-secret-token-value" not in out + err


def test_apply_survives_transient_5xx(jenkins_env: JenkinsEmulator, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo)
    jenkins_env.state.faults.rules = [{"status": 503, "count": 1, "path": "createItem"},
                                      {"drop": True, "count": 1, "path": "config.xml"}]
    code, _, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "apply", "--retries", "2")
    assert code == 0, err
    assert jenkins_env.state.find(["ml", "retail", "credit-risk"]) is not None


def test_lost_answers_to_creates_are_retried_safely(jenkins_env: JenkinsEmulator, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo)
    # Each createItem takes effect, then its answer is lost; the retry meets "already exists".
    jenkins_env.state.faults.rules = [{"drop": True, "after": True, "count": 3,
                                       "path": "createItem"}]
    code, out, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")
    assert code == 0, err
    assert "2 folder(s) and 1 job(s) created" in out
    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "plan", "--json")
    assert '"unchanged": 1' in out


def test_a_build_whose_answer_is_lost_is_not_started_again(emulator: JenkinsEmulator) -> None:
    c = client(emulator)
    c.create_item("p", "<flow-definition/>")
    emulator.state.faults.rules = [{"drop": True, "after": True, "count": 1, "path": "build"}]
    with pytest.raises(JenkinsError, match="job p: build failed: cannot reach"):
        c.build("p", {"A": "1"})
    assert len(emulator.state.queue) == 1  # started once, never twice


def test_trigger_follows_queue_to_result(jenkins_env: JenkinsEmulator, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    write_spec(repo)
    assert call_mlgen(capsys, "-C", str(repo), "jenkins", "apply")[0] == 0
    code, out, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "trigger", "--reason", "drift",
                               "--param", "WINDOW=24h", "--poll", "0.02", "--console")
    assert code == 0, err
    assert f"job {JOB}/main: build #1 SUCCESS" in out and "REASON = drift" in out
    assert "WINDOW = 24h" in out
    jenkins_env.state.next_results[f"{JOB}/main"] = ["FAILURE"]
    code, out, _ = call_mlgen(capsys, "-C", str(repo), "jenkins", "trigger", "--poll", "0.02")
    assert code == 1 and "build #2 FAILURE" in out
    jenkins_env.state.queue_seconds = 60
    code, _, err = call_mlgen(capsys, "-C", str(repo), "jenkins", "trigger", "--poll", "0.02",
                             "--timeout", "1")
    assert code == 1 and f"job {JOB}/main: queue item 3 did not start within 1 s" in err
