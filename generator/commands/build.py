"""`mlgen build`: build the model's image from the generated Dockerfile through the engine API."""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
from mlgen.models.contract import STATE_DIR

from ..errors import UsageError
from ..project import project_dir

# The generated Dockerfile copies this folder into the build stage only; see Dockerfile.j2.
BUILD_INPUTS = Path(STATE_DIR) / "build"


@dataclass(frozen=True)
class BuildPlan:
    context: Path
    dockerfile: str
    tags: tuple[str, ...]
    build_args: dict[str, str]
    revision: str


def git_revision(folder: Path) -> str | None:
    """The commit checked out in `folder`, or None outside a git repository."""
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "--verify", "-q", "HEAD"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    rev = out.stdout.strip()
    return rev if out.returncode == 0 and rev else None


def plan_build(
    project: Path, extra_tags: tuple[str, ...], build_args: tuple[str, ...]
) -> BuildPlan:
    """Tags, build arguments and the Dockerfile for the project: nothing touches the engine."""
    from ..integrations.docker import split_reference
    from ..project import load_project

    spec = load_project(project)
    dockerfile = project / spec.outputs.dockerfile
    if not dockerfile.is_file():
        raise UsageError(f"{dockerfile} does not exist; run `mlgen render` (or `mlgen sync`) first")
    revision = git_revision(project)
    # The version tag is what the overlays reference; the revision tag says exactly which
    # commit is inside. Never `latest`: a moving tag cannot be pinned or rolled back.
    tags = [spec.version]
    if revision:
        tags.append(revision[:12])
    tags += [t for t in extra_tags if t not in tags]
    refs = tuple(f"{spec.image_name}:{t}" for t in tags)
    for ref in refs:
        split_reference(ref)
    args = {"BASE_IMAGE": spec.image.base, "VCS_REF": revision or "unknown"}
    if spec.image.pip_index_url:
        args["PIP_INDEX_URL"] = spec.image.pip_index_url
    for item in build_args:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--build-arg {item!r}: write KEY=VALUE")
        args[key] = value
    return BuildPlan(context=project, dockerfile=spec.outputs.dockerfile, tags=refs,
                     build_args=args, revision=revision or "unknown")


@contextlib.contextmanager
def build_inputs(project: Path, ca_bundle: Path | None, wheels: tuple[Path, ...]) -> Iterator[Path]:
    """Put the CA bundle and local wheels in `.mlgen/build/` for one build, then take them out.

    The folder must exist (the Dockerfile COPYs it). Only what this call added is removed, so
    wheels a user keeps there stay, and the CA bundle never outlives the build.
    """
    folder = project / BUILD_INPUTS
    wheel_dir = folder / "wheels"
    created = [p for p in (project / ".mlgen", folder, wheel_dir) if not p.exists()]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    added: list[Path] = []
    try:
        if ca_bundle is not None:
            target = folder / "ca.crt"
            shutil.copyfile(ca_bundle, target)
            added.append(target)
        for wheel in wheels:
            if not wheel.name.endswith(".whl"):
                raise UsageError(f"--wheel {wheel}: not a wheel file (*.whl)")
            target = wheel_dir / wheel.name
            if not target.exists():
                shutil.copyfile(wheel, target)
                added.append(target)
        yield folder
    finally:
        for path in added:
            path.unlink(missing_ok=True)
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir()  # only if empty: never remove what someone else put there


@click.command("build")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Another tag, e.g. the CI commit SHA (the version and git revision tags are always set).",
)
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CA bundle pip trusts inside the build stage only (a corporate TLS proxy).")
@click.option("--wheel", "wheels", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A local wheel pip may install from (--find-links); repeatable.")
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE",
              help="Override a build argument (BASE_IMAGE and PIP_INDEX_URL come from the spec).")
@click.option("--no-cache", is_flag=True, help="Rebuild every step.")
@click.option("--pull", is_flag=True, help="Pull a newer base image first.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as JSON on stdout (progress goes to stderr).")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the build log.")
@click.pass_context
def command(ctx: click.Context, tags: tuple[str, ...], ca_bundle: Path | None,
            wheels: tuple[Path, ...], build_args: tuple[str, ...], no_cache: bool, pull: bool,
            as_json: bool, quiet: bool) -> int:
    """Build the model image from the generated Dockerfile (Docker or podman via DOCKER_HOST)."""
    from ..integrations.docker import BuildRequest, build_image, connect

    project = project_dir(ctx)
    plan = plan_build(project, tags, build_args)
    labels = {"org.opencontainers.image.revision": plan.revision}

    def echo(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    client = connect()
    with build_inputs(project, ca_bundle, wheels):
        result = build_image(client, BuildRequest(
            context=project.resolve(), dockerfile=plan.dockerfile, tags=plan.tags,
            build_args=plan.build_args, labels=labels, no_cache=no_cache, pull=pull), echo)
    if as_json:
        click.echo(json.dumps({"id": result.image_id, "tags": list(result.tags),
                               "size": result.size, "revision": plan.revision}, indent=2))
    else:
        for ref in result.tags:
            click.echo(f"built {ref}")
        click.echo(f"image {result.image_id} ({result.size / 1e6:.0f} MB)")
    return 0
