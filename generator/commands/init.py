from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import UsageError
from ..project import project_dir

if TYPE_CHECKING:
    from ..render import Artifact
    from ..sync.writer import FileWrite

# A new monorepo takes every model folder under models/: an empty list is refused (a root spec
# must name a model) and a listed folder would have to exist first, whereas with discover
# `mlgen init models/NAME` then `mlgen sync` adds a model without editing this file.
ROOT_SPEC = """\
# yaml-language-server: $schema=.mlgen/mlgen-root.schema.json
# A monorepo's root spec: every folder under models/ with an mlgen.yaml is a model (see
# docs/monorepo.md). Add one with `mlgen init models/NAME`, then run `mlgen sync` here.
# Reference: `mlgen schema --root` prints every key.
apiVersion: mlgen/v1
models: {discover: "models/*"}
"""
ROOT_SCHEMA_PATH = ".mlgen/mlgen-root.schema.json"

# Starting features per task; the scaffold's synthetic data generator produces exactly these.
STARTERS = {
    "classification": {
        "numeric": ["income", "age", "debt_ratio", "credit_lines"],
        "categorical": ["employment_type", "region"],
        "target": "default",
        "gate_metrics": [("roc_auc", "{min: 0.70}"), ("brier", "{max: 0.25}")],
    },
    "regression": {
        "numeric": ["living_area", "rooms", "building_age", "distance_km"],
        "categorical": ["district", "property_type"],
        "target": "price",
        "gate_metrics": [("r2", "{min: 0.60}"), ("rmse", "{max: 60000}")],
    },
}


@click.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Model name: a DNS-1123 label such as credit-risk.")
@click.option("--task", type=click.Choice(["classification", "regression"]), default=None)
@click.option("--description", default=None, help="One line about the model (free text).")
@click.option("--owner", default=None, help="Owning team.")
@click.option("--registry", default=None, help="Image registry host, e.g. registry.bank.internal.")
@click.option(
    "--interactive/--non-interactive",
    default=None,
    help="Ask for each answer (default when stdin is a terminal), or use flags and defaults.",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option("--monorepo", is_flag=True,
              help="Write a monorepo's root mlgen.yaml in DIR (models: {discover: \"models/*\"}) "
                   "instead of a model; add models with `mlgen init DIR/models/NAME`.")
@click.option("--templates", "templates", multiple=True, type=click.Path(path_type=Path),
              metavar="DIR", help="A folder of template overrides, layered over the built-ins.")
@click.pass_context
def command(ctx: click.Context, directory: Path | None, name: str | None, task: str | None,
            description: str | None, owner: str | None, registry: str | None,
            interactive: bool | None, force: bool, monorepo: bool,
            templates: tuple[Path, ...]) -> int:
    """Scaffold a model repository in DIRECTORY (default: the -C folder).

    Writes mlgen.yaml, a working scikit-learn project and every pipeline file. With
    --monorepo, a monorepo's root mlgen.yaml only.
    """
    root = directory if directory is not None else project_dir(ctx)
    if monorepo:
        given = [flag for flag, value in (("--name", name), ("--task", task),
                                          ("--description", description), ("--owner", owner),
                                          ("--registry", registry), ("--templates", templates))
                 if value]
        if given:
            raise UsageError(f"--monorepo writes only the root spec; {', '.join(given)} "
                             "belong to a model: `mlgen init DIR/models/NAME ...`")
        for path in init_monorepo(root, force=force):
            click.echo(f"  created  {path}")
        click.echo(f"Initialised a monorepo in {root}. Next: `mlgen init {root / 'models'}/NAME`"
                   f" for each model, then `mlgen -C {root} sync`.", err=True)
        return 0
    if interactive is None:
        interactive = sys.stdin.isatty()
    default_name = _slug(root.resolve().name)
    answers = {
        "name": name
        or (click.prompt("Model name", default=default_name) if interactive else default_name),
        "task": task
        or (
            click.prompt(
                "Task",
                default="classification",
                type=click.Choice(["classification", "regression"]),
            )
            if interactive
            else "classification"
        ),
        "description": description
        if description is not None
        else (click.prompt("Description", default="", show_default=False) if interactive else ""),
        "owner": owner
        or (click.prompt("Owning team", default="ml-platform") if interactive else "ml-platform"),
        "registry": registry
        or (
            click.prompt("Image registry", default="registry.example.com")
            if interactive
            else "registry.example.com"
        ),
    }
    from ..spec_types import DNS_LABEL_RE

    if not re.match(DNS_LABEL_RE, answers["name"]) or len(answers["name"]) > 63:
        raise UsageError(f"--name {answers['name']!r} must be a DNS-1123 label: lowercase letters, "
                         "digits and '-', starting and ending with a letter or digit, at most 63 "
                         "characters")
    from ..monorepo import enclosing_monorepo

    # Inside a monorepo the pipeline files and the lock belong to its root: write the spec and
    # the starter project only, and say how to render the rest from there.
    mono = enclosing_monorepo(root)
    files = init_project(root, answers, force=force, extra_templates=templates,
                         pipeline_files=mono is None)
    for path in files:
        click.echo(f"  created  {path}")
    if mono is not None:
        folder = root.resolve().relative_to(mono).as_posix()
        first = "" if _lists(mono, folder) else (f"list '{folder}' in its mlgen.yaml "
                                                  "models:, then ")
        click.echo(f"{root} is inside the monorepo at {mono}: {first}run "
                   f"`mlgen -C {mono} sync` to write its pipeline files.", err=True)
        return 0
    click.echo(f"Initialised {answers['name']} in {root} ({len(files)} files). Next: "
               f"`mlgen -C {root} run train`.", err=True)
    return 0


def _lists(mono: Path, folder: str) -> bool:
    """Whether the root spec at `mono` takes `folder` (listed, or found by discover:)."""
    from ..errors import SpecError
    from ..monorepo import load_monorepo_folders

    try:
        return folder in load_monorepo_folders(mono)
    except SpecError:
        return False  # e.g. listed folders not yet created: the user fixes the root spec


def init_monorepo(root: Path, force: bool = False) -> list[str]:
    """Write a monorepo's root mlgen.yaml and its editor schema; refuse (exit 2) to overwrite
    a spec, or to start a monorepo inside another."""
    from mlgen.models.contract import SPEC_FILENAME

    from ..monorepo import enclosing_monorepo
    from ..sync.writer import FileWrite, write_files
    from .schema import schema_text

    outer = enclosing_monorepo(root)
    if outer is not None:
        raise UsageError(f"{root} is inside the monorepo at {outer}: a monorepo cannot hold "
                         "another; add a model there with `mlgen init` instead")
    spec = root / SPEC_FILENAME
    if spec.exists() and not force:
        raise UsageError(f"{spec} already exists; nothing was written. Use --force to "
                         "overwrite it (its content is lost).")
    root.mkdir(parents=True, exist_ok=True)
    writes = [FileWrite(SPEC_FILENAME, ROOT_SPEC.encode()),
              FileWrite(ROOT_SCHEMA_PATH, schema_text(root=True).encode())]
    write_files(root, writes)
    return [w.path for w in writes]


def init_project(root: Path, answers: dict[str, str], force: bool = False,
                 extra_templates: tuple[Path, ...] = (), pipeline_files: bool = True) -> list[str]:
    from ..render import make_environment

    starter = STARTERS[answers["task"]]
    env = make_environment(list(extra_templates))
    spec_text = env.get_template("scaffold/mlgen.yaml.j2").render(
        **answers, package=answers["name"].replace("-", "_"), **starter)
    return create_project(root, spec_text, force=force, extra_templates=extra_templates,
                          pipeline_files=pipeline_files)


def create_project(root: Path, spec_text: str, force: bool = False,
                   extra_templates: tuple[Path, ...] = (), pipeline_files: bool = True
                   ) -> list[str]:
    """Write mlgen.yaml, the starter project and every pipeline file, all or nothing.

    Without `pipeline_files` (a new model inside a monorepo), the spec and the starter project
    only: the monorepo's root renders and locks the rest."""
    from mlgen.models.contract import SPEC_FILENAME

    from ..project import render_artifacts, template_dirs
    from ..render import make_environment
    from ..scaffold import scaffold_artifacts
    from ..spec_loader import parse_spec
    from ..sync.writer import FileWrite, write_files
    from .schema import schema_text

    spec = parse_spec(spec_text, str(root / SPEC_FILENAME))
    env = make_environment(template_dirs(spec, root, extra_templates))
    writes = [FileWrite(SPEC_FILENAME, spec_text.encode()),
              FileWrite(".mlgen/mlgen.schema.json", schema_text().encode()),
              FileWrite(".mlgen/build/.gitkeep", b"")]
    writes += [FileWrite(a.path, a.text.encode(), a.mode) for a in scaffold_artifacts(spec, env)]
    if pipeline_files:
        used: dict[str, str] = {}
        rendered = render_artifacts(spec, root, (), extra_templates, used_templates=used)
        writes += [FileWrite(a.path, a.text.encode(), a.mode) for a in rendered]
        # so `mlgen sync` can merge later
        writes.append(_lock_write(root, rendered, used, spec_text))
    existing = [w.path for w in writes if (root / w.path).exists()]
    if existing and not force:
        shown = ", ".join(existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise UsageError(
            f"{root}: {len(existing)} file(s) already exist ({shown}); "
            "nothing was written. Use --force to overwrite, or `mlgen sync` to update."
        )
    root.mkdir(parents=True, exist_ok=True)
    write_files(root, writes)
    return [w.path for w in writes]


def create_monorepo(root: Path, force: bool = False,
                    extra_templates: Sequence[Path] = ()) -> list[str]:
    """A monorepo's files from its specs (root and models, already in place, never rewritten):
    each model's starter project in its folder, every pipeline file and the one root lock.

    The specs (root and models) must already be in place; they are never rewritten.
    """
    from mlgen.models.contract import SPEC_FILENAME

    from ..monorepo import load_monorepo
    from ..project import template_dirs
    from ..render import make_environment
    from ..scaffold import scaffold_artifacts
    from ..sync.local import render_project
    from ..sync.lock import LOCK_PATH
    from ..sync.plan import lock_after_render
    from ..sync.writer import FileWrite, write_files
    from .schema import schema_text

    mono = load_monorepo(root)
    writes = [FileWrite(ROOT_SCHEMA_PATH, schema_text(root=True).encode())]
    for entry in mono.models:
        folder = root / entry.folder
        env = make_environment(template_dirs(entry.spec, folder, extra_templates))
        env.globals["model_dir"] = entry.folder
        writes += [FileWrite(f"{entry.folder}/.mlgen/mlgen.schema.json", schema_text().encode()),
                   FileWrite(f"{entry.folder}/.mlgen/build/.gitkeep", b"")]
        writes += [FileWrite(f"{entry.folder}/{a.path}", a.text.encode(), a.mode)
                   for a in scaffold_artifacts(entry.spec, env)]
    rendered = render_project(root, extra_templates)
    writes += [FileWrite(a.path, a.text.encode(), a.mode) for a in rendered.artifacts]
    lock = lock_after_render(None, rendered.artifacts, rendered.templates, rendered.spec_sha256)
    writes.append(FileWrite(LOCK_PATH, lock.to_json()))
    existing = [w.path for w in writes if (root / w.path).exists()]
    if existing and not force:
        raise UsageError(f"{root}: {len(existing)} file(s) already exist ({existing[0]} ...); "
                         "nothing was written. Use `mlgen sync` to update them.")
    write_files(root, writes)
    return [SPEC_FILENAME, *(f"{m}/{SPEC_FILENAME}" for m in mono.folders),
            *(w.path for w in writes)]


def _lock_write(root: Path, rendered: list[Artifact], used: dict[str, str],
                spec_text: str) -> FileWrite:
    from ..render import BUILTIN_TEMPLATES
    from ..sync.lock import LOCK_PATH, sha256_text, template_set
    from ..sync.plan import lock_after_render
    from ..sync.writer import FileWrite

    lock = lock_after_render(None, rendered, template_set(used, BUILTIN_TEMPLATES, root),
                             sha256_text(spec_text.replace("\r\n", "\n")))
    return FileWrite(LOCK_PATH, lock.to_json())


def _slug(text: str) -> str:
    from ..render import slugify

    return slugify(text.lower(), keep="a-z0-9-", edges="-", fallback="model")
