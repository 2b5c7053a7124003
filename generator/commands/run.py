from __future__ import annotations

import os
import subprocess

import click

from ..errors import UsageError
from ..project import project_dir


@click.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("stage")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def command(ctx: click.Context, stage: str, extra: tuple[str, ...]) -> int:
    """Run STAGE's command from mlgen.yaml (model.stages), exactly as CI runs it.

    Extra arguments after the stage name are appended to the command, shell-quoted.
    """
    return run_stage(project_dir(ctx), stage, extra)


def run_stage(folder: os.PathLike[str], stage: str, extra: tuple[str, ...] = ()) -> int:
    import shlex
    from pathlib import Path

    from ..project import load_project

    spec = load_project(Path(folder))
    command_text = spec.model.stages.get(stage)
    if command_text is None:
        raise UsageError(f"no stage '{stage}' in mlgen.yaml (model.stages); "
                         f"stages: {', '.join(spec.model.stages) or 'none'}")
    if extra:
        command_text += " " + " ".join(shlex.quote(a) for a in extra)
    click.echo(f"mlgen run {stage}: {command_text}", err=True)
    env = dict(os.environ, MLGEN_STAGE=stage, MLGEN_MODEL_NAME=spec.name)
    # Stage commands say `python`/`pytest`: make them the ones installed beside this mlgen
    # (CI calls .venv/bin/mlgen without activating the venv; setup-python's python has no deps).
    import sys
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")]) if env.get("PATH") else bindir
    completed = subprocess.run(["/bin/sh", "-c", command_text], cwd=folder, env=env, check=False)
    if completed.returncode != 0:
        click.echo(f"mlgen run {stage}: failed with exit code {completed.returncode}", err=True)
    return 1 if completed.returncode else 0
