"""The `mlgen` command line: a root group whose subcommands are imported only when used.

`mlgen --help` must stay fast and must not import heavy SDKs (kubernetes, github, jenkins,
docker, sklearn), so each subcommand lives in its own module under `mlgen.commands` and is
listed here by import path, with its one-line help kept beside it.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from . import __version__
from .errors import EXIT_BUG, EXIT_INTERRUPTED, MlgenError
from .project import Settings

# name -> (module:attribute, short help). Keep sorted by name.
COMMANDS: dict[str, tuple[str, str]] = {
    "bot": ("mlgen.commands.bot:command", "Run the GitHub webhook bot (mlgen bot serve)."),
    "build": (
        "mlgen.commands.build:command",
        "Build the model image through the Docker Engine API.",
    ),
    "check": (
        "mlgen.commands.check:command",
        "Fail when generated files drifted from mlgen.yaml (CI, pre-commit).",
    ),
    "comment": ("mlgen.commands.comment:command", "Post or update the mlgen report on a PR."),
    "deploy": (
        "mlgen.commands.deploy:command",
        "Deploy the pushed image digest to an environment; wait, roll back on failure.",
    ),
    "drift": ("mlgen.commands.drift:command", "Detect data drift against the reference profile."),
    "feedback": (
        "mlgen.commands.feedback:command",
        "Store ground-truth labels for logged predictions.",
    ),
    "gate": (
        "mlgen.commands.gate:command",
        "Check metrics against the spec's gate and the champion.",
    ),
    "github": ("mlgen.commands.github:command", "GitHub actions: trigger a workflow_dispatch."),
    "gitops": (
        "mlgen.commands.gitops:command",
        "Pin the pushed image digest in an overlay Argo CD syncs; commit, push.",
    ),
    "init": ("mlgen.commands.init:command", "Scaffold a new model repository from a spec."),
    "jenkins": (
        "mlgen.commands.jenkins:command",
        "Register model jobs on Jenkins: plan, apply, prune, trigger.",
    ),
    "migrate": (
        "mlgen.commands.migrate:command",
        "Rewrite mlgen.yaml to a newer apiVersion, keeping comments.",
    ),
    "monitor": (
        "mlgen.commands.monitor:command",
        "Live model performance from labels; exit 1 on a real drop.",
    ),
    "promote": (
        "mlgen.commands.promote:command",
        "Promote the canary challenger or roll it back from live metrics.",
    ),
    "push": (
        "mlgen.commands.push:command",
        "Push the image to the spec's registry; record its digest.",
    ),
    "render": ("mlgen.commands.render:command", "Render every pipeline file from mlgen.yaml."),
    "run": ("mlgen.commands.run:command", "Run a stage command named in mlgen.yaml."),
    "schema": ("mlgen.commands.schema:command", "Print the JSON Schema of mlgen.yaml."),
    "serve": ("mlgen.commands.serve:command", "Serve the model: KServe V2, /predict, /metrics."),
    "status": (
        "mlgen.commands.status:command",
        "Show what runs in each environment: digest, version, replicas, last rollout.",
    ),
    "validate": (
        "mlgen.commands.validate:command",
        "Run the real linters and scanners over the generated files.",
    ),
    "sync": (
        "mlgen.commands.sync:command",
        "Re-render and update generated files, keeping hand edits.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, _, attr = entry[0].partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry[0]} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Uses the static help strings so that listing commands imports none of them.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mlgen")
@click.option(
    "-C",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="Act on the model repository in DIR instead of the current folder.",
    metavar="DIR",
)
@click.pass_context
def cli(ctx: click.Context, project_dir: Path) -> None:
    """mlgen: one mlgen.yaml in, every pipeline file of an ML model repository out.

    Exit codes: 0 ok, 1 failure or findings, 2 usage or spec error,
    3 unexpected error (a log is written for the bug report), 130 interrupted.
    """
    ctx.obj = Settings(project_dir=project_dir)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: the one place where errors become exit codes."""
    try:
        rv = cli.main(args=argv, prog_name="mlgen", standalone_mode=False)
    except MlgenError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception:  # noqa: BLE001 - the last resort: keep a log for the bug report
        import tempfile  # only here: every command, --help included, starts without them
        import traceback

        fd, log_path = tempfile.mkstemp(prefix="mlgen-crash-", suffix=".log")
        with os.fdopen(fd, "w") as log:
            log.write(f"mlgen {__version__}\nargv: {sys.argv!r}\n\n")
            traceback.print_exc(file=log)
        click.echo(
            f"error: unexpected internal error; details in {log_path} "
            "(please attach it to a bug report)",
            err=True,
        )
        return EXIT_BUG
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
