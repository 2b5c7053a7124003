"""Fleet sync against the emulator: bounded workers, resumable state, dry run, JSON report,
secondary-limit backoff; and the "github" retrain hook dispatching the drift workflow."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.github import DEFAULT_TOKEN, Emulator
from tests.publish.github.test_publish import fake_render, synced

pytest.importorskip("github", reason="PyGithub is the 'github' extra")

from mlgen.integrations.github import client as gh
from mlgen.publish.github.fleet import FleetOptions, read_fleet_file, run_fleet, summary_table
from mlgen.publish.github.sync_pr import sync_pull_request

from tests.helpers import REPO as REPO_ROOT
from tests.helpers import call_mlgen


def sync(client: Any, repository: str, **kw: Any) -> dict[str, Any]:
    return sync_pull_request(client, repository, render=fake_render, **kw)


def test_fleet_dry_run_resume_and_report(tmp_path: Path) -> None:
    with Emulator() as emu:
        for i in range(6):
            # r2..r5 already up to date; r0, r1 synced under an older name
            files = synced(f"name: r{i}\n" if i >= 2 else "name: old\n")
            files["mlgen.yaml"] = f"name: r{i}\n"
            emu.add_repo(f"org/r{i}", files, topics=["ml"])
        client = gh.connect(gh.Settings.from_env(
            {"GITHUB_TOKEN": DEFAULT_TOKEN, "GITHUB_API_URL": emu.url},
            seconds_between_writes=0.01, backoff_factor=0.01))
        fleet = tmp_path / "fleet.yaml"
        fleet.write_text("org: org\ntopic: ml\n")
        entries = read_fleet_file(fleet)
        dry = run_fleet(client, entries, FleetOptions(concurrency=3, dry_run=True), sync,
                        progress=None)
        assert sorted(o["status"] for o in dry).count("would-change") == 2
        assert set(emu.counts()) == {"GET", "GRAPHQL"}  # a dry run only reads

        state, report = tmp_path / "state.json", tmp_path / "report.json"
        emu.faults(secondary_limit=2, retry_after=1, match="POST")
        first = run_fleet(client, [{"repository": f"org/r{i}"} for i in range(6)],
                          FleetOptions(concurrency=3, state_path=state, report_path=report),
                          sync, progress=None)
        assert sorted(o["status"] for o in first) == ["created"] * 2 + ["up-to-date"] * 4
        assert json.loads(report.read_text())["summary"] == {"created": 2, "up-to-date": 4}
        assert "org/r0" in summary_table(first) and "org/r5" not in summary_table(first)
        emu.reset_counts()
        again = run_fleet(client, [{"repository": f"org/r{i}"} for i in range(6)],
                          FleetOptions(state_path=state), sync, progress=None)
        assert emu.counts() == {} and all(o.get("skipped") for o in again)


def test_github_retrain_hook_dispatches_the_drift_workflow(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from types import SimpleNamespace

    from mlgen.publish.github.retrain import make_hook

    with Emulator() as emu:
        emu.add_repo("bank/credit", {"README.md": "x"}, default_branch="trunk")
        monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        spec = SimpleNamespace(ci=SimpleNamespace(github=SimpleNamespace(
            repository="bank/credit", default_branch="trunk")))
        url = make_hook(spec).trigger("drift", {"drifted": ["income"]})
        assert url.endswith("bank/credit/actions/workflows/drift.yml")
        [d] = emu.state.repo("bank", "credit").dispatches
        assert d["ref"] == "trunk" and d["inputs"]["reason"].startswith("drift (drifted:")


# ---------------------------------------------------------------- template overrides

EXAMPLE_SPEC = (REPO_ROOT / "examples" / "credit-risk"
                / "mlgen.yaml").read_text()
SPEC_WITH_OVERRIDES = EXAMPLE_SPEC + "templates: ci/templates\n"
OVERRIDE = "ci/templates/docker/dockerignore.j2"
CUSTOM = "# our own ignore list\n*.parquet\n"


def escape(marker: Path) -> str:
    return ("# ignore\n{{ lipsum.__globals__['os']"
            f".popen('touch {marker}').read() }}}}\n")


@pytest.fixture()
def mlgen(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """The real CLI entry point, exit codes as a user sees them."""

    def run(emu: Emulator, *args: str) -> tuple[int, str, str]:
        monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        return call_mlgen(capsys, *args)
    return run


def sync_branch_file(emu: Emulator, repo: str, path: str) -> str:
    git = emu.state.repo(*repo.split("/")).git
    return git.git("show", f"refs/heads/mlgen/sync:{path}").decode()


def test_fleet_renders_a_repositorys_overrides_only_when_its_entry_opts_in(
        tmp_path: Path, mlgen: Any) -> None:
    marker = tmp_path / "pwned"
    with Emulator() as emu:
        emu.add_repo("org/custom", {"mlgen.yaml": SPEC_WITH_OVERRIDES, OVERRIDE: CUSTOM})
        emu.add_repo("org/trusted", {"mlgen.yaml": SPEC_WITH_OVERRIDES, OVERRIDE: CUSTOM})
        emu.add_repo("org/hostile", {"mlgen.yaml": SPEC_WITH_OVERRIDES,
                                     OVERRIDE: escape(marker)})
        emu.add_repo("org/evil-trusted", {"mlgen.yaml": SPEC_WITH_OVERRIDES,
                                          OVERRIDE: escape(marker)})
        fleet = tmp_path / "fleet.yaml"
        fleet.write_text("- org/custom\n- org/hostile\n"
                         "- {repository: org/trusted, trust_templates: true}\n"
                         "- {repository: org/evil-trusted, trust_templates: true}\n")

        code, out, _ = mlgen(emu, "sync", "--pr", "--fleet", str(fleet), "--dry-run", "--json")
        report = {o["repository"]: o for o in json.loads(out)["repositories"]}
        note = ("template overrides in ci/templates ignored: repository not trusted for "
                "templates (see `trust_templates: true` on its entry in the fleet file)")
        assert report["org/custom"]["notes"] == [note]
        assert report["org/hostile"]["notes"] == [note]
        assert "notes" not in report["org/trusted"]
        assert report["org/evil-trusted"]["status"] == "failed"
        assert report["org/evil-trusted"]["error"].startswith(
            f"org/evil-trusted:{OVERRIDE}:2: template blocked by the sandbox: ")
        assert code == 1 and not marker.exists()

        code, out, _ = mlgen(emu, "sync", "--pr", "--fleet", str(fleet))
        assert code == 1 and not marker.exists()
        assert f"org/custom: {note}" in out and f"org/hostile: {note}" in out
        assert "template blocked by the sandbox" in out  # org/evil-trusted's row
        # ignored: the built-in .dockerignore; trusted: the repository's own
        assert CUSTOM not in sync_branch_file(emu, "org/custom", ".dockerignore")
        assert sync_branch_file(emu, "org/trusted", ".dockerignore").endswith(CUSTOM)
        assert CUSTOM not in sync_branch_file(emu, "org/hostile", ".dockerignore")
        [pull] = emu.state.repo("org", "custom").pulls
        assert f"- {note}\n" in pull["body"]
        [trusted_pull] = emu.state.repo("org", "trusted").pulls
        assert "ignored" not in trusted_pull["body"]
        assert "overrides from `ci/templates`" in trusted_pull["body"]
        assert emu.state.repo("org", "evil-trusted").pulls == []


def test_sync_pr_trusts_overrides_only_when_told(tmp_path: Path, mlgen: Any) -> None:
    with Emulator() as emu:
        emu.add_repo("org/one", {"mlgen.yaml": SPEC_WITH_OVERRIDES, OVERRIDE: CUSTOM})
        code, out, _ = mlgen(emu, "sync", "--pr", "--repo", "org/one", "--dry-run")
        assert code == 0
        assert ("note: template overrides in ci/templates ignored: repository not trusted for "
                "templates (see `mlgen sync --pr --trust-templates OWNER/NAME`)") in out
        code, out, _ = mlgen(emu, "sync", "--pr", "--repo", "org/one", "--trust-templates",
                             "Org/One")
        assert code == 0 and "ignored" not in out
        assert sync_branch_file(emu, "org/one", ".dockerignore").endswith(CUSTOM)


def test_trusted_overrides_folder_is_found_however_the_spec_spells_it(mlgen: Any) -> None:
    with Emulator() as emu:
        emu.add_repo("org/one", {"mlgen.yaml": EXAMPLE_SPEC + "templates: ./ci/templates/\n",
                                 OVERRIDE: CUSTOM})
        code, out, err = mlgen(emu, "sync", "--pr", "--repo", "org/one", "--trust-templates",
                               "org/one")
        assert code == 0, out + err
        assert sync_branch_file(emu, "org/one", ".dockerignore").endswith(CUSTOM)


def test_trusted_overrides_folder_with_no_files_is_an_error_naming_the_spec(
        mlgen: Any) -> None:
    with Emulator() as emu:
        # The files sit in another folder: rendering must not fall back to the built-ins.
        emu.add_repo("org/one", {"mlgen.yaml": EXAMPLE_SPEC + "templates: ci/tmpl\n",
                                 OVERRIDE: CUSTOM})
        code, out, err = mlgen(emu, "sync", "--pr", "--repo", "org/one", "--trust-templates",
                               "org/one")
        assert code != 0
        assert ("org/one:mlgen.yaml: templates: 'ci/tmpl' names no folder of files in the "
                "repository") in err, out + err
        assert emu.state.repo("org", "one").pulls == []


@pytest.mark.parametrize("text, message", [
    ("- {repository: org/a, trust_templates: 'yes'}\n",
     "item 1: trust_templates: expected true or false, got 'yes'"),
    ("org: org\ntopic: ml\ntrust_templates: true\n",
     "trust_templates is set per repository, not for a whole org or topic"),
])
def test_fleet_trust_key_mistakes_are_usage_errors(tmp_path: Path, mlgen: Any, text: str,
                                                   message: str) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(text)
    with Emulator() as emu:
        code, _, err = mlgen(emu, "sync", "--pr", "--fleet", str(fleet), "--dry-run")
    assert code == 2 and f"error: {fleet}: {message}" in err


def test_trust_templates_needs_pr_and_owner_name(tmp_path: Path, mlgen: Any) -> None:
    with Emulator() as emu:
        code, _, err = mlgen(emu, "sync", "--trust-templates", "org/one")
        assert code == 2 and "add --pr" in err
        code, _, err = mlgen(emu, "sync", "--pr", "--repo", "org/one", "--trust-templates",
                             "nope")
        assert code == 2 and "--trust-templates 'nope': expected OWNER/NAME" in err
