"""The scenario matrix: real `mlgen init` projects in real git repositories, edited by hand,
then synced. Each test checks that no hand edit is lost and what `git diff` shows."""
from __future__ import annotations

import json
import stat
from pathlib import Path

from mlgen.render import BUILTIN_TEMPLATES
from mlgen.sync.lock import LOCK_PATH, Lock

from .conftest import Project

EDIT = "# team note: keep the build small\n"


def lock(project: Project) -> Lock:
    return Lock.from_json((project.root / LOCK_PATH).read_bytes())


def test_unedited_files_are_replaced(project: Project) -> None:
    project.spec("port: 8080", "port: 9090")
    rc, out, _ = project.mlgen("sync")
    assert rc == 0
    assert "update  Dockerfile" in out
    assert "EXPOSE 9090" in project.read("Dockerfile")
    assert "8080" not in project.read("k8s/base/deployment.yaml")
    changed = set(project.git("diff", "--name-only").split())
    assert {"Dockerfile", "k8s/base/deployment.yaml", "mlgen.yaml", LOCK_PATH} <= changed
    assert project.mlgen("check")[0] == 0


def test_edit_away_from_changed_lines_is_kept(project: Project) -> None:
    project.replace("Dockerfile", "FROM ${BASE_IMAGE} AS build\n",
                    "FROM ${BASE_IMAGE} AS build\n" + EDIT)
    project.spec("port: 8080", "port: 9090")
    rc, out, _ = project.mlgen("sync")
    assert rc == 0, out
    assert "merge  Dockerfile" in out
    text = project.read("Dockerfile")
    assert EDIT in text and "EXPOSE 9090" in text and "<<<<<<<" not in text
    diff = project.git("diff", "--", "Dockerfile")
    assert "+EXPOSE 9090" in diff and "+# team note" in diff
    assert project.mlgen("check")[0] == 0  # the merge went through sync: recorded


def test_edit_on_changed_lines_conflicts_then_resolves(project: Project) -> None:
    project.replace("Dockerfile", "EXPOSE 8080", "EXPOSE 8081  # proxy port")
    project.spec("port: 8080", "port: 9090")
    rc, out, err = project.mlgen("sync")
    assert rc == 1
    assert "conflict  Dockerfile" in out and "Dockerfile" in err
    text = project.read("Dockerfile")
    assert "<<<<<<< yours (on disk)\nEXPOSE 8081  # proxy port\n=======\nEXPOSE 9090\n" \
           ">>>>>>> new render\n" in text
    assert "CMD [\"--port\", \"9090\"]" in text  # the clean parts merged
    rc, out, _ = project.mlgen("check", "--json")
    assert rc == 1 and {"path": "Dockerfile", "status": "conflict"}.items() <= \
        next(f for f in json.loads(out)["files"] if f["path"] == "Dockerfile").items()
    # A second sync without resolving touches nothing and still fails.
    assert project.mlgen("sync")[0] == 1
    assert project.read("Dockerfile") == text
    # Resolve by hand (take our line), sync records it, check passes, edit survives.
    resolved = text.replace("<<<<<<< yours (on disk)\n", "").replace(
        "=======\nEXPOSE 9090\n>>>>>>> new render\n", "")
    project.write("Dockerfile", resolved)
    rc, out, _ = project.mlgen("sync")
    assert rc == 0 and "keep  Dockerfile" in out
    assert project.mlgen("check")[0] == 0
    assert "EXPOSE 8081  # proxy port" in project.read("Dockerfile")


def test_conflict_rej_keeps_your_version_and_writes_the_hunks(project: Project) -> None:
    project.replace("Dockerfile", "EXPOSE 8080", "EXPOSE 8081")
    project.spec("port: 8080", "port: 9090")
    rc, _, _ = project.mlgen("sync", "--conflict", "rej")
    assert rc == 1
    text = project.read("Dockerfile")
    assert "EXPOSE 8081" in text and "<<<<<<<" not in text and "EXPOSE 9090" not in text
    assert 'CMD ["--port", "9090"]' in text  # non-overlapping hunks still merged
    rej = project.read("Dockerfile.rej")
    assert "EXPOSE 9090" in rej and "@@ near line" in rej
    assert project.mlgen("check")[0] == 1  # the .rej is pending
    (project.root / "Dockerfile.rej").unlink()
    assert project.mlgen("sync")[0] == 0
    assert project.mlgen("check")[0] == 0


def test_conflict_ours_and_theirs(project: Project) -> None:
    project.replace("Dockerfile", "EXPOSE 8080", "EXPOSE 8081")
    project.spec("port: 8080", "port: 9090")
    rc, out, _ = project.mlgen("sync", "--conflict", "ours", "--dry-run")
    assert rc == 0 and "resolved  Dockerfile" in out and "EXPOSE 8081" in project.read("Dockerfile")
    assert project.mlgen("sync", "--conflict", "theirs")[0] == 0
    assert "EXPOSE 9090" in project.read("Dockerfile")
    assert "EXPOSE 8081" not in project.read("Dockerfile")


def test_deleted_generated_file_stays_deleted_until_restored(project: Project) -> None:
    (project.root / ".github/workflows/drift.yml").unlink()
    rc, out, _ = project.mlgen("check")
    assert rc == 1
    rc, out, _ = project.mlgen("sync")
    assert rc == 0 and "opt-out  .github/workflows/drift.yml" in out
    assert lock(project).files[".github/workflows/drift.yml"].opted_out
    # A scheduled CI drift check appears only when drift.current names a window CI can read.
    project.spec('schedule: "0 */6 * * *"', 'schedule: "0 */2 * * *"\n  current: exports/window')
    assert project.mlgen("sync")[0] == 0
    assert project.mlgen("render")[0] == 0  # render respects the opt-out too
    assert not (project.root / ".github/workflows/drift.yml").exists()
    assert project.mlgen("check")[0] == 0
    rc, out, _ = project.mlgen("sync", "--restore", ".github/workflows/drift.yml")
    assert rc == 0 and "restore" in out
    assert "0 */2 * * *" in project.read(".github/workflows/drift.yml")
    assert not lock(project).files[".github/workflows/drift.yml"].opted_out


def test_new_target_enabled(project: Project) -> None:
    project.spec("name: credit-risk\n", "name: credit-risk\ntargets: [jenkins, docker]\n")
    assert project.mlgen("render", "--force")[0] == 0  # start without github-actions/kubernetes
    project.replace("Dockerfile", "FROM ${BASE_IMAGE} AS build\n",
                    "FROM ${BASE_IMAGE} AS build\n" + EDIT)
    assert project.mlgen("sync")[0] == 0
    project.commit("two targets")
    project.spec("targets: [jenkins, docker]", "targets: [jenkins, docker, kubernetes]")
    rc, out, _ = project.mlgen("sync")
    assert rc == 0
    assert "create  k8s/base/deployment.yaml" in out
    assert EDIT in project.read("Dockerfile")
    assert "k8s/base/deployment.yaml" in project.git("status", "--porcelain", "-uall")
    assert project.mlgen("check")[0] == 0


def test_target_disabled_removes_only_unedited_files(project: Project) -> None:
    project.replace("k8s/base/hpa.yaml", "kind: HorizontalPodAutoscaler\n",
                    "kind: HorizontalPodAutoscaler\n# tuned by SRE\n")
    assert project.mlgen("sync")[0] == 0
    project.spec(
        "name: credit-risk\n", "name: credit-risk\ntargets: [jenkins, github-actions, docker]\n"
    )
    rc, out, _ = project.mlgen("sync")
    assert rc == 0
    assert "remove  k8s/base/deployment.yaml" in out and "orphan  k8s/base/hpa.yaml" in out
    assert not (project.root / "k8s/base/deployment.yaml").exists()
    assert "# tuned by SRE" in project.read("k8s/base/hpa.yaml")
    assert "k8s/base/hpa.yaml" not in lock(project).files
    assert project.mlgen("check")[0] == 0


def test_renamed_model_keeps_an_edit(project: Project) -> None:
    project.replace("k8s/base/deployment.yaml", "  revisionHistoryLimit: 5\n",
                    "  revisionHistoryLimit: 5\n  progressDeadlineSeconds: 900  # slow nodes\n")
    project.commit("edit")
    project.spec("name: credit-risk", "name: loan-risk")
    rc, out, _ = project.mlgen("sync")
    assert rc == 0, out
    deployment = project.read("k8s/base/deployment.yaml")
    assert 'name: "loan-risk"' in deployment and "progressDeadlineSeconds: 900" in deployment
    assert "MODEL_NAME = 'loan-risk'" in project.read("Jenkinsfile")
    assert "-  progressDeadlineSeconds" not in project.git("diff")


def _template_version(tmp: Path, version: int) -> Path:
    """A real template override folder: a copy of the built-in Dockerfile template, changed."""
    folder = tmp / f"templates-v{version}"
    (folder / "docker").mkdir(parents=True)
    text = (BUILTIN_TEMPLATES / "docker" / "Dockerfile.j2").read_text()
    if version >= 2:
        text = text.replace("RUN python3 -m venv /opt/venv\n",
                            "RUN python3 -m venv --upgrade-deps /opt/venv\n")
        assert "--upgrade-deps" in text
        text = text.replace("ENTRYPOINT [", "STOPSIGNAL SIGTERM\nENTRYPOINT [")
        assert "STOPSIGNAL" in text
    (folder / "docker" / "Dockerfile.j2").write_text(text)
    return folder


def test_template_upgrade_keeps_edits(project: Project, tmp_path: Path) -> None:
    v1, v2 = _template_version(tmp_path, 1), _template_version(tmp_path, 2)
    assert project.mlgen("sync", "--templates", str(v1))[0] == 0
    before = lock(project).templates
    assert before.overrides == ("templates-v1",)
    project.replace("Dockerfile", "WORKDIR /app\n", "WORKDIR /app\n" + EDIT)
    assert project.mlgen("sync", "--templates", str(v1))[0] == 0
    project.commit("v1 with edit")
    rc, out, _ = project.mlgen("check", "--templates", str(v2), "--json")
    report = json.loads(out)
    assert rc == 1 and report["templates_changed"] and not report["spec_changed"]
    assert {f["path"]: f["status"] for f in report["files"]}["Dockerfile"] == "stale"
    rc, out, _ = project.mlgen("sync", "--templates", str(v2))
    assert rc == 0 and "merge  Dockerfile" in out
    text = project.read("Dockerfile")
    assert "--upgrade-deps" in text and "STOPSIGNAL SIGTERM" in text and EDIT in text
    assert lock(project).templates.hash != before.hash
    assert project.git("diff", "--name-only").split() == ["Dockerfile", LOCK_PATH] or \
        set(project.git("diff", "--name-only").split()) == {"Dockerfile", LOCK_PATH}


def test_spec_change_and_template_change_at_once(project: Project, tmp_path: Path) -> None:
    v1, v2 = _template_version(tmp_path, 1), _template_version(tmp_path, 2)
    assert project.mlgen("sync", "--templates", str(v1))[0] == 0
    project.replace("Dockerfile", "FROM ${BASE_IMAGE} AS build\n",
                    "FROM ${BASE_IMAGE} AS build\n" + EDIT)
    project.replace("k8s/base/service.yaml", "kind: Service\n", "kind: Service\n# lb note\n")
    project.spec("port: 8080", "port: 9090")
    rc, out, _ = project.mlgen("sync", "--templates", str(v2))
    assert rc == 0, out
    text = project.read("Dockerfile")
    assert EDIT in text and "--upgrade-deps" in text and "EXPOSE 9090" in text
    service = project.read("k8s/base/service.yaml")
    assert "# lb note" in service and "9090" in service


def test_crlf_file_keeps_crlf(project: Project) -> None:
    path = project.root / "Jenkinsfile"
    crlf = path.read_bytes().replace(b"\n", b"\r\n")
    path.write_bytes(crlf)
    assert project.mlgen("check")[0] == 0  # a CRLF checkout is not an edit
    path.write_bytes(crlf.replace(b"pipeline {\r\n", b"pipeline {\r\n    // ops: see runbook\r\n"))
    project.spec("name: credit-risk", "name: loan-risk")
    assert project.mlgen("sync")[0] == 0
    data = path.read_bytes()
    assert b"// ops: see runbook\r\n" in data and b"MODEL_NAME = 'loan-risk'\r\n" in data
    assert data.count(b"\n") == data.count(b"\r\n")
    (project.root / "Dockerfile").write_bytes((project.root / "Dockerfile").read_bytes()
                                              .replace(b"\n", b"\r\n"))
    project.spec("port: 8080", "port: 9090")
    assert project.mlgen("sync")[0] == 0
    docker = (project.root / "Dockerfile").read_bytes()
    assert b"EXPOSE 9090\r\n" in docker and docker.count(b"\n") == docker.count(b"\r\n")


def test_executable_bit_kept(project: Project) -> None:
    path = project.root / "Jenkinsfile"
    path.chmod(0o755)
    assert project.mlgen("sync")[0] == 0
    project.commit("executable")
    project.spec("name: credit-risk", "name: loan-risk")
    assert project.mlgen("sync")[0] == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert "old mode" not in project.git("diff", "--", "Jenkinsfile")
    assert "loan-risk" in path.read_text()
    assert project.mlgen("check")[0] == 0


def test_check_before_and_after_a_hand_edit(project: Project) -> None:
    rc, _, err = project.mlgen("check")
    assert rc == 0 and "up to date" in err
    project.replace("k8s/base/service.yaml", "kind: Service\n", "kind: Service\n# lb note\n")
    rc, out, err = project.mlgen("check")
    assert rc == 1
    assert "edited  k8s/base/service.yaml" in err and "+# lb note" in out
    assert project.mlgen("sync")[0] == 0
    assert project.mlgen("check")[0] == 0
    project.spec("port: 8080", "port: 9090")
    rc, out, err = project.mlgen("check")
    assert rc == 1 and "stale  Dockerfile" in err and "+EXPOSE 9090" in out
    assert "stale  k8s/base/service.yaml" in err  # edited before, recorded: only stale now


def test_render_refuses_to_overwrite_a_hand_edit(project: Project) -> None:
    project.replace("Dockerfile", "WORKDIR /app\n", "WORKDIR /app\n" + EDIT)
    project.spec("port: 8080", "port: 9090")
    rc, _, err = project.mlgen("render")
    assert rc == 1 and "Dockerfile" in err and "mlgen sync" in err and "--force" in err
    assert EDIT in project.read("Dockerfile") and "EXPOSE 8080" in project.read("Dockerfile")
    assert "EXPOSE 8080" in project.read("Dockerfile")
    assert "8080" in project.read("k8s/base/service.yaml")  # all or nothing: nothing written
    assert project.mlgen("render", "--force")[0] == 0
    assert EDIT not in project.read("Dockerfile") and project.mlgen("check")[0] == 0


def test_dry_run_diff_and_json_write_nothing(project: Project) -> None:
    project.spec("port: 8080", "port: 9090")
    lock_before = (project.root / LOCK_PATH).read_bytes()
    assert project.mlgen("sync", "--dry-run")[0] == 0
    rc, out, _ = project.mlgen("sync", "--diff")
    assert rc == 0 and "+EXPOSE 9090" in out
    rc, out, _ = project.mlgen("sync", "--json", "--dry-run")
    report = json.loads(out)
    assert not report["written"] and any(f["path"] == "Dockerfile" and f["action"] == "update"
                                         for f in report["files"])
    assert "EXPOSE 8080" in project.read("Dockerfile")
    assert (project.root / LOCK_PATH).read_bytes() == lock_before


def test_second_sync_is_a_no_op(project: Project) -> None:
    project.replace("Dockerfile", "WORKDIR /app\n", "WORKDIR /app\n" + EDIT)
    project.spec("port: 8080", "port: 9090")
    assert project.mlgen("sync")[0] == 0
    project.commit("synced")
    rc, _, err = project.mlgen("sync")
    assert rc == 0 and "0 file(s) changed" in err
    assert project.git("status", "--porcelain") == ""


def test_edit_that_matches_the_new_render(project: Project) -> None:
    project.replace("Dockerfile", "EXPOSE 8080", "EXPOSE 9090")
    project.spec("port: 8080", "port: 9090")
    rc, out, _ = project.mlgen("sync")
    assert rc == 0 and "conflict" not in out
    assert project.mlgen("check")[0] == 0


def test_project_without_lock_adopts_identical_files_and_never_overwrites(project: Project) -> None:
    (project.root / LOCK_PATH).unlink()
    project.replace("Dockerfile", "WORKDIR /app\n", "WORKDIR /app\n" + EDIT)
    project.spec("port: 8080", "port: 9090")
    rc, out, _ = project.mlgen("sync")
    assert rc == 1  # no base recorded: a two-way merge, every difference is a conflict
    text = project.read("Dockerfile")
    assert EDIT in text and "<<<<<<<" in text
    assert "update  k8s/base/service.yaml" not in out  # untracked, so merged two ways too
    assert (project.root / LOCK_PATH).exists()
    assert "unchanged" not in out or "Jenkinsfile" not in out


def test_write_failure_leaves_tree_unchanged(project: Project) -> None:
    project.spec("name: credit-risk\n", "name: credit-risk\ntargets: [jenkins, docker]\n")
    assert project.mlgen("sync")[0] == 0  # removes the kubernetes files
    assert not (project.root / "k8s").exists()
    (project.root / "k8s").write_text("not a folder\n")  # blocks the k8s/ files to come
    project.commit("blocked")
    project.spec("targets: [jenkins, docker]", "targets: [jenkins, docker, kubernetes]")
    project.spec("port: 8080", "port: 9090")
    rc, _, err = project.mlgen("sync")
    assert rc == 1 and "nothing was changed" in err
    assert project.git("status", "--porcelain") == " M mlgen.yaml\n"
