"""The pure core, driven from memory as `mlgen sync --pr` drives it from the GitHub API."""
from __future__ import annotations

from mlgen.render import Artifact
from mlgen.sync.lock import Lock, LockEntry, TemplateSet, sha256_text
from mlgen.sync.merge import has_conflict_markers, merge3
from mlgen.sync.plan import merge_hook, plan_sync


def _entry(path: str, text: str) -> LockEntry:
    return LockEntry(path, sha256_text(text), 0o644, text, sha256_text(text), 0o644)


BASE = "a\nb\nc\nd\ne\nf\n"


def test_plan_from_memory_merges_and_records_a_new_lock() -> None:
    remote = {"x.yml": b"a\nb (edited)\nc\nd\ne\nf\n", "gone.yml": b"old\n"}
    lock = Lock(files={"x.yml": _entry("x.yml", BASE), "gone.yml": _entry("gone.yml", "old\n")})
    rendered = [Artifact("x.yml", "a\nb\nc\nd\ne\nf (new)\n"), Artifact("new.yml", "n\n")]
    plan = plan_sync(rendered, lock, remote.get, templates=TemplateSet("9", "sha256:t"),
                     spec_sha256="s")
    actions = {a.path: a.action for a in plan.actions}
    assert actions == {"x.yml": "merge", "new.yml": "create", "gone.yml": "remove"}
    assert plan.action("x.yml").data == b"a\nb (edited)\nc\nd\ne\nf (new)\n"  # type: ignore[union-attr]
    assert set(plan.lock.files) == {"x.yml", "new.yml"}
    assert plan.lock.files["x.yml"].base == rendered[0].text
    restored = Lock.from_json(plan.lock.to_json())
    assert restored.files == plan.lock.files and restored.spec_sha256 == "s"
    writes = plan.file_writes()
    assert writes[-1].path == ".mlgen/lock.json"  # the lock is committed last
    hook = merge_hook(plan)
    assert hook("x.yml", remote["x.yml"]) == b"a\nb (edited)\nc\nd\ne\nf (new)\n"


def test_conflict_modes_from_memory() -> None:
    lock = Lock(files={"x": _entry("x", BASE)})
    rendered = [Artifact("x", "a\nb\nC-new\nd\ne\nf\n")]
    current = {"x": b"a\nb\nC-mine\nd\ne\nf\n"}
    inline = plan_sync(rendered, lock, current.get)
    assert inline.conflicts == ["x"] and has_conflict_markers(inline.actions[0].data.decode())  # type: ignore[union-attr]
    assert merge_hook(inline)("x", current["x"]) is None
    ours = plan_sync(rendered, lock, current.get, conflict="ours")
    assert ours.conflicts == [] and ours.actions[0].data == current["x"]
    rej = plan_sync(rendered, lock, current.get, conflict="rej")
    assert rej.actions[0].data == current["x"] and b"C-new" in rej.actions[0].reject  # type: ignore[operator]


def test_merge3_is_git_merge_file() -> None:
    clean = merge3(BASE, BASE.replace("a\n", "A\n"), BASE.replace("f\n", "F\n"))
    assert clean.conflicts == 0 and clean.text == "A\nb\nc\nd\ne\nF\n"
    clash = merge3(BASE, BASE.replace("c", "1"), BASE.replace("c", "2"))
    assert clash.conflicts == 1 and "<<<<<<< " in clash.text and ">>>>>>> " in clash.text
