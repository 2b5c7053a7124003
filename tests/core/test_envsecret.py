"""mlgen.envsecret: a secret from NAME or from the file NAME_FILE names (a mounted Secret)."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlgen.envsecret import env_secret, secret_source
from mlgen.errors import UsageError


def test_plain_variable_wins_then_file_without_trailing_newline(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cr3t-value\n")
    assert env_secret({"T": "plain", "T_FILE": str(token)}, "T") == "plain"
    assert env_secret({"T_FILE": str(token)}, "T") == "s3cr3t-value"
    token.write_bytes(b"with spaces inside \r\n")
    assert env_secret({"T_FILE": str(token)}, "T") == "with spaces inside "
    assert env_secret({}, "T") is None


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["missing", "empty", "newline"])
def test_missing_or_empty_file_names_the_variable_and_path(
        tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "JENKINS_API_TOKEN"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError) as caught:
        env_secret({"JENKINS_API_TOKEN_FILE": str(path)}, "JENKINS_API_TOKEN")
    assert str(caught.value).startswith(f"JENKINS_API_TOKEN_FILE={path}: ")
    assert ("empty" if content is not None else "cannot read") in str(caught.value)


def test_secret_source_names_what_env_secret_reads() -> None:
    assert secret_source({"T": "plain", "T_FILE": "/run/t"}, "T") == "T"
    assert secret_source({"T_FILE": "/run/t"}, "T") == "T_FILE=/run/t"
    assert secret_source({}, "T") == "T"
