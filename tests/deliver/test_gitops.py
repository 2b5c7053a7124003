"""GitOps delivery: Argo CD Applications per environment, `mlgen gitops pin`, the pipelines.

The house-prices example delivers through Argo CD (kubernetes.gitops); credit-risk deploys by
push. git runs for real, against repositories and bare remotes in tmp.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from mlgen.deliver import gitrepo
from mlgen.deliver.gitops import PinPlan, apply_pin, parse_image, plan_pin
from mlgen.validate import argocd

from tests.helpers import EXAMPLES, call_mlgen

HOUSE = EXAMPLES / "house-prices"
DIGEST = "sha256:" + "4f1c" * 16
OTHER = "sha256:" + "0b7d" * 16
OVERLAY = "k8s/overlays/prod/kustomization.yaml"


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "house-prices"
    shutil.copytree(HOUSE, root)
    return root


@pytest.fixture
def repo(project: Path) -> Path:
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "the example")
    return project


def _digest_in(project: Path, env: str = "prod") -> str | None:
    doc = yaml.safe_load((project / f"k8s/overlays/{env}/kustomization.yaml").read_text())
    entry = next(e for e in doc["images"] if e["name"].endswith("/house-prices"))
    return entry.get("digest")


# ---- the Applications ----------------------------------------------------------------------


def test_an_application_per_environment_points_at_its_overlay_and_is_schema_valid() -> None:
    for env, server in (("test", "https://kubernetes.default.svc"),
                        ("prod", "https://prod-api.k8s.bank.internal:6443")):
        path = HOUSE / "k8s" / "argocd" / f"{env}.yaml"
        text = path.read_text(encoding="utf-8")
        app = yaml.safe_load(text)
        assert app["kind"] == "Application" and app["apiVersion"] == "argoproj.io/v1alpha1"
        assert app["metadata"] == {**app["metadata"], "name": f"house-prices-{env}",
                                   "namespace": "argocd"}
        source = app["spec"]["source"]
        assert source["repoURL"] == "https://github.com/bank-ml/house-prices.git"
        assert source["targetRevision"] == "main"
        assert (HOUSE / source["path"] / "kustomization.yaml").is_file()
        assert source["path"] == f"k8s/overlays/{env}"
        assert app["spec"]["destination"] == {"server": server, "namespace": "valuation"}
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        assert argocd.check_text(f"k8s/argocd/{env}.yaml", text) == []
    assert not (EXAMPLES / "credit-risk" / "k8s" / "argocd").exists()  # push deploys only


def test_the_vendored_schema_is_strict_where_the_crd_is_structural() -> None:
    schema = argocd.application_schema()
    sync = schema["properties"]["spec"]["properties"]["syncPolicy"]
    assert sync["additionalProperties"] is False
    assert set(schema["required"]) >= {"apiVersion", "kind", "metadata", "spec"}


@pytest.mark.parametrize(("edit", "line_of", "fragment"), [
    (lambda t: t.replace("selfHeal: true", "selfheal: true"), "selfheal",
     "unknown field(s) selfheal"),
    (lambda t: t.replace("      limit: 5", '      limit: "five"'), "limit:",
     "'five' is not of type"),
    (lambda t: t.replace('  project: "default"\n', ""), None, "'project' is a required property"),
    (lambda t: t.replace("kind: Application", "kind: Aplication"), "kind:", "was expected"),
    (lambda t: t.replace('    namespace: "valuation"',
                         '    namespace: "valuation"\n    name: "prod"'),
     "destination", "exactly one of server or name"),
])
def test_a_broken_application_is_a_finding_on_its_line(edit: Callable[[str], str],
                                                       line_of: str | None,
                                                       fragment: str) -> None:
    text = edit((HOUSE / "k8s/argocd/prod.yaml").read_text(encoding="utf-8"))
    findings = argocd.check_text("k8s/argocd/prod.yaml", text)
    assert findings, text
    assert any(fragment in f.message for f in findings), [f.message for f in findings]
    if line_of is not None:
        wanted = next(i for i, line in enumerate(text.splitlines(), 1) if line_of in line)
        assert wanted in {f.line for f in findings}, findings


def test_mlgen_validate_fails_on_a_broken_application(project: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "k8s/argocd/test.yaml"
    path.write_text(path.read_text().replace("  source:", "  sorce:"), encoding="utf-8")
    code, out, err = call_mlgen(capsys, "-C", str(project), "validate", "--tool",
                                argocd.NAME, "--format", "json")
    assert code == 1, err
    report = json.loads(out)
    messages = [f["message"] for f in report["findings"] if f["tool"] == argocd.NAME]
    assert any("unknown field(s) sorce" in m for m in messages), messages
    code, out, err = call_mlgen(capsys, "-C", str(HOUSE), "validate", "--tool", argocd.NAME)
    assert code == 0, out + err


# ---- mlgen gitops pin ----------------------------------------------------------------------


def test_pin_writes_the_digest_keeps_comments_and_check_stays_green(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (project / OVERLAY).read_text()
    code, out, err = call_mlgen(capsys, "-C", str(project), "gitops", "pin", "prod",
                                "--digest", DIGEST, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["changed"] is True and result["previous_digest"] is None
    after = (project / OVERLAY).read_text()
    assert _digest_in(project) == DIGEST
    assert _digest_in(project, "test") is None  # only the named environment
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert added == [f'    digest: "{DIGEST}"']  # nothing else reformatted
    assert "# Generated by mlgen" in after and "# `mlgen gitops pin prod` writes" in after
    code, out, err = call_mlgen(capsys, "-C", str(project), "check")
    assert code == 0, out + err  # the lock records the pin as mlgen's own write
    # Again with the same digest: nothing to do.
    code, out, err = call_mlgen(capsys, "-C", str(project), "gitops", "pin", "prod",
                                "--digest", DIGEST)
    assert code == 0 and "already pins" in out, err


def test_pin_keeps_a_hand_comment_and_reports_the_previous_digest(project: Path) -> None:
    path = project / OVERLAY
    path.write_text(path.read_text().replace(
        "replicas:\n", "# four replicas: the valuation batch at month end\nreplicas:\n"))
    apply_pin(project, plan_pin(project, "prod", parse_image(DIGEST)))
    plan = plan_pin(project, "prod", parse_image(f"registry.bank.internal:5000/house-prices"
                                                 f":0.3.2@{OTHER}"))
    assert plan.previous_digest == DIGEST
    assert plan.diff().count("\n-") == 1 and f'+    digest: "{OTHER}"' in plan.diff()
    apply_pin(project, plan)
    text = path.read_text()
    assert "# four replicas: the valuation batch at month end\n" in text
    assert _digest_in(project) == OTHER
    champion = next(e for e in yaml.safe_load(text)["images"]
                    if e["name"].endswith("/house-prices"))
    assert "newName" not in champion  # the same repository as the spec's


def test_pin_dry_run_and_diff_write_nothing(project: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = (project / OVERLAY).read_bytes(), (project / ".mlgen/lock.json").read_bytes()
    code, out, err = call_mlgen(capsys, "-C", str(project), "gitops", "pin", "prod",
                                "--digest", DIGEST, "--dry-run", "--diff")
    assert code == 0, err
    assert f'+    digest: "{DIGEST}"' in out and out.startswith(f"--- a/{OVERLAY}")
    assert "would pin prod" in err
    assert ((project / OVERLAY).read_bytes(), (project / ".mlgen/lock.json").read_bytes()) \
        == before


def test_a_pinned_digest_survives_sync_and_a_version_bump(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call_mlgen(capsys, "-C", str(project), "gitops", "pin", "prod",
                              "--digest", DIGEST)
    assert code == 0, err
    code, out, err = call_mlgen(capsys, "-C", str(project), "sync")
    assert code == 0, out + err
    assert _digest_in(project) == DIGEST
    spec = project / "mlgen.yaml"
    spec.write_text(spec.read_text().replace('version: "0.3.2"', 'version: "0.4.0"')
                    .replace("replicas: 4", "replicas: 5"))
    code, out, err = call_mlgen(capsys, "-C", str(project), "sync")
    assert code == 0, out + err
    doc = yaml.safe_load((project / OVERLAY).read_text())
    assert doc["images"][0] == {"name": "registry.bank.internal:5000/house-prices",
                                "newTag": "0.4.0", "digest": DIGEST}
    # The example's shadow challenger runs as many pods as the champion.
    assert doc["replicas"] == [{"name": "house-prices", "count": 5},
                               {"name": "house-prices-challenger", "count": 5}]
    code, out, err = call_mlgen(capsys, "-C", str(project), "check")
    assert code == 0, out + err


@pytest.mark.parametrize(("args", "fragment"), [
    (["--digest", "sha256:abc"], "64 lowercase hex digits"),
    (["--digest", "sha256:" + "A" * 64], "64 lowercase hex digits"),
    (["--digest", "4f1c" * 16], "64 lowercase hex digits"),
    (["--image", f"Registry/Bad@{DIGEST}"], "is not an image repository"),
    (["--digest", DIGEST, "--image", f"r/x@{DIGEST}"], "give exactly one of"),
    ([], "give exactly one of"),
    (["--digest", DIGEST, "--push", "--dry-run"], "do not go together"),
])
def test_bad_input_exits_2_naming_what_is_wrong(project: Path, args: list[str], fragment: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    before = (project / OVERLAY).read_bytes()
    code, _, err = call_mlgen(capsys, "-C", str(project), "gitops", "pin", "prod", *args)
    assert code == 2 and fragment in err, err
    assert (project / OVERLAY).read_bytes() == before


def test_unknown_environment_or_gitops_off_exit_2(project: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call_mlgen(capsys, "-C", str(project), "gitops", "pin", "staging",
                              "--digest", DIGEST)
    assert code == 2 and "unknown environment 'staging'" in err and "test, prod" in err
    push_only = tmp_path / "credit-risk"
    shutil.copytree(EXAMPLES / "credit-risk", push_only)
    code, _, err = call_mlgen(capsys, "-C", str(push_only), "gitops", "pin", "prod",
                              "--digest", DIGEST)
    assert code == 2 and "kubernetes.gitops.enabled is false" in err


def test_digest_file_from_mlgen_push(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = project / "reports/image.json"
    record.parent.mkdir()
    record.write_text(json.dumps({"image": "registry.bank.internal:5000/house-prices",
                                  "digest": DIGEST}))
    code, _, err = call_mlgen(capsys, "-C", str(project), "gitops", "pin", "test",
                              "--digest-file", str(record))
    assert code == 0, err
    assert _digest_in(project, "test") == DIGEST


# ---- git: --commit and --push --------------------------------------------------------------


def test_pin_commit_makes_one_commit_of_the_overlay_and_the_lock(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "notes.txt").write_text("not mine to commit\n")
    head = _git(repo, "rev-parse", "HEAD")
    code, out, err = call_mlgen(capsys, "-C", str(repo), "gitops", "pin", "prod",
                                "--digest", DIGEST, "--commit", "--json")
    assert code == 0, err
    sha = json.loads(out)["commit"]
    assert _git(repo, "rev-list", f"{head}..HEAD") == sha  # exactly one new commit
    assert _git(repo, "show", "--name-only", "--format=", sha).splitlines() == [
        ".mlgen/lock.json", OVERLAY]
    message = _git(repo, "log", "-1", "--format=%B")
    assert message.startswith("mlgen gitops: pin prod to sha256:4f1c4f1c4f1c")
    assert "Mlgen-Gitops-Pin: prod" in message
    assert _git(repo, "status", "--porcelain") == "?? notes.txt"
    code, out, err = call_mlgen(capsys, "-C", str(repo), "gitops", "pin", "prod",
                                "--digest", DIGEST, "--commit", "--json")
    assert code == 0 and json.loads(out)["commit"] is None  # nothing new: no empty commit
    assert _git(repo, "rev-list", "--count", f"{head}..HEAD") == "1"


def _remote_with_clone(tmp_path: Path, repo: Path) -> tuple[Path, Path]:
    remote = tmp_path / "remote.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    _git(repo, "remote", "add", "origin", str(remote))
    _git(repo, "push", "-q", "origin", "main")
    return remote, repo


def test_pin_push_commits_on_the_remote_branch_from_a_tag_checkout(
        tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    remote, clone = _remote_with_clone(tmp_path, repo)
    _git(clone, "tag", "v0.3.2")
    _git(clone, "checkout", "-q", "--detach", "v0.3.2")  # what a tag build checks out
    (clone / "README.md").write_text("a later commit on main\n")
    other = tmp_path / "other"
    _git(tmp_path, "clone", "-q", str(remote), str(other))
    (other / "README.md").write_text("someone else's change\n")
    _git(other, "commit", "-qam", "docs")
    _git(other, "push", "-q", "origin", "main")
    code, out, err = call_mlgen(capsys, "-C", str(clone), "gitops", "pin", "prod", "--digest",
                                DIGEST, "--push", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["pushed"] is True and result["branch"] == "main"
    shown = _git(remote, "show", f"main:{OVERLAY}")
    assert f'digest: "{DIGEST}"' in shown
    assert _git(remote, "log", "-1", "--format=%s", "main~1") == "docs"  # on top of the remote
    assert _git(clone, "rev-parse", "HEAD") == _git(clone, "rev-parse", "v0.3.2^{commit}")
    assert _digest_in(clone) is None  # the checkout is left alone
    assert _git(clone, "worktree", "list").count("\n") == 0  # the temporary worktree is gone


def test_pin_push_retries_when_someone_pushed_first(tmp_path: Path, repo: Path) -> None:
    remote, clone = _remote_with_clone(tmp_path, repo)
    other = tmp_path / "other"
    _git(tmp_path, "clone", "-q", str(remote), str(other))
    raced = []

    def make_plan(where: Path) -> PinPlan:
        if not raced:  # between our fetch and our push, another pipeline pins test
            raced.append(True)
            (other / "README.md").write_text("raced\n")
            _git(other, "add", "README.md")
            _git(other, "commit", "-qm", "race")
            _git(other, "push", "-q", "origin", "main")
        return plan_pin(where, "prod", parse_image(DIGEST))

    _, pushed = gitrepo.pin_and_push(clone, make_plan, apply_pin, "origin", "main")
    assert pushed.attempts == 2 and pushed.commit is not None
    assert _git(remote, "rev-parse", "main") == pushed.commit
    assert _git(remote, "log", "-1", "--format=%s", "main~1") == "race"
    assert f'digest: "{DIGEST}"' in _git(remote, "show", f"main:{OVERLAY}")


def test_the_token_reaches_git_through_the_environment_never_a_command_line(
        tmp_path: Path) -> None:
    token = "ghs_s3cr3tT0ken"
    env = gitrepo.git_env({"PATH": os.environ["PATH"], "HOME": str(tmp_path),
                           gitrepo.TOKEN_ENV: token, gitrepo.USERNAME_ENV: "ci-bot"})
    assert all(token not in value for key, value in env.items() if key != gitrepo.TOKEN_ENV)
    assert token not in gitrepo.CREDENTIAL_HELPER
    answer = subprocess.run(["git", "credential", "fill"], input="protocol=https\n"
                            "host=github.com\npath=bank-ml/house-prices.git\n\n", env=env,
                            capture_output=True, text=True, check=True, timeout=30)
    assert "username=ci-bot\n" in answer.stdout and f"password={token}\n" in answer.stdout
    assert "GIT_CONFIG_COUNT" not in gitrepo.git_env({"PATH": os.environ["PATH"]})


# ---- the pipelines -------------------------------------------------------------------------


def test_gitops_pipelines_pin_and_push_instead_of_deploying() -> None:
    cd = yaml.safe_load((HOUSE / ".github/workflows/cd.yml").read_text())
    for env in ("test", "prod"):
        job = cd["jobs"][f"deploy-{env}"]
        script = "\n".join(step.get("run", "") for step in job["steps"])
        assert f'mlgen gitops pin {env} --digest "$IMAGE_DIGEST" --push --branch main' in script
        assert "mlgen deploy" not in script and "KUBECONFIG" not in json.dumps(job)
        assert job["permissions"] == {"contents": "write"}
        step = job["steps"][-1]
        assert step["env"]["MLGEN_GIT_PASSWORD"] == "${{ github.token }}"
    others = {name: job["permissions"] for name, job in cd["jobs"].items()
              if not name.startswith("deploy-")}
    assert all(p.get("contents") != "write" for p in others.values()), others
    assert cd["permissions"] == {}
    jenkinsfile = (HOUSE / "Jenkinsfile").read_text()
    assert "mlgen deploy" not in jenkinsfile
    for env in ("test", "prod"):
        assert (f"sh '.venv/bin/mlgen gitops pin {env} --digest-file reports/image.json "
                "--push --branch main'") in jenkinsfile
    assert "passwordVariable: 'MLGEN_GIT_PASSWORD'" in jenkinsfile
    assert "Mlgen-Gitops-Pin: " in jenkinsfile  # a pin commit does not deploy again
    push = EXAMPLES / "credit-risk"
    assert "mlgen gitops" not in (push / "Jenkinsfile").read_text()
    assert "mlgen deploy" in (push / ".github/workflows/cd.yml").read_text()
