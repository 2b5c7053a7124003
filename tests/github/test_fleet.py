"""Fleet sync against the emulator: bounded workers, resumable state, dry run, JSON report,
secondary-limit backoff; and the "github" retrain hook dispatching the drift workflow."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.github import DEFAULT_TOKEN, Emulator
from tests.github.test_publish import fake_render, synced

pytest.importorskip("github", reason="PyGithub is the 'github' extra")

from mlgen.github_fleet import FleetOptions, read_fleet_file, run_fleet, summary_table
from mlgen.github_sync import sync_pull_request
from mlgen.integrations import github as gh


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

    from mlgen.github_retrain import make_hook

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
