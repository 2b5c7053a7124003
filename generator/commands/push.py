"""`mlgen push`: push the built image to the spec's registry and record the pushed digest."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import UsageError
from ..project import project_dir

if TYPE_CHECKING:
    from ..integrations.docker import Credentials


def registry_credentials(environ: dict[str, str] | None = None) -> Credentials | None:
    """REGISTRY_USER/REGISTRY_PASSWORD from the environment, else None (the Docker config)."""
    from ..integrations.docker import Credentials

    env = os.environ if environ is None else environ
    user, password = env.get("REGISTRY_USER"), env.get("REGISTRY_PASSWORD")
    if bool(user) != bool(password):
        missing = "REGISTRY_PASSWORD" if user else "REGISTRY_USER"
        raise UsageError(f"REGISTRY_USER and REGISTRY_PASSWORD go together; {missing} is empty")
    return Credentials(user, password) if user and password else None


def write_digest_file(path: Path, image: str, tag: str, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"image": image, "tag": tag, "digest": digest}, indent=2) + "\n",
                    encoding="utf-8")


def write_github_output(image: str, tag: str, digest: str) -> None:
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        raise UsageError("--github-output: GITHUB_OUTPUT is not set (it is, inside GitHub Actions)")
    with open(target, "a", encoding="utf-8") as out:
        out.write(f"image={image}\ntag={tag}\ndigest={digest}\nreference={image}@{digest}\n")


@click.command("push")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Tag to push (repeatable); default: the spec's version.")
@click.option("--digest-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write {image, tag, digest} as JSON here (what `mlgen deploy` pins).")
@click.option("--github-output", is_flag=True,
              help="Also write image, tag, digest to $GITHUB_OUTPUT for later jobs.")
@click.option("--attempts", default=4, show_default=True, type=click.IntRange(1, 20),
              help="Tries per tag; transient registry errors are retried with backoff.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream push progress.")
@click.pass_context
def command(ctx: click.Context, tags: tuple[str, ...], digest_file: Path | None,
            github_output: bool, attempts: int, as_json: bool, quiet: bool) -> int:
    """Push the image to the spec's registry; print and record its digest.

    Credentials: REGISTRY_USER and REGISTRY_PASSWORD, else the Docker config
    (`docker login`, credential helpers). They are never printed.
    """
    from ..integrations.docker import connect, push_image
    from ..project import load_project

    spec = load_project(project_dir(ctx))
    credentials = registry_credentials()

    def echo(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    client = connect()
    results = [push_image(client, f"{spec.image_name}:{tag}", credentials, echo,
                          attempts=attempts) for tag in (tags or (spec.version,))]
    first = results[0]
    if digest_file is not None:
        write_digest_file(digest_file, first.image, first.tag, first.digest)
    if github_output:
        write_github_output(first.image, first.tag, first.digest)
    if as_json:
        click.echo(json.dumps([{"image": r.image, "tag": r.tag, "digest": r.digest}
                               for r in results], indent=2))
    else:
        for r in results:
            click.echo(f"pushed {r.image}:{r.tag} {r.digest}")
    return 0
