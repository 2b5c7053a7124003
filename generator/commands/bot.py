"""`mlgen bot serve`: run the GitHub webhook receiver (see mlgen.publish.github.bot)."""
from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType

import click

from ..errors import UsageError


@click.group("bot")
def command() -> None:
    """The GitHub webhook bot."""


@command.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--db", "db_path", default=".mlgen/bot.sqlite", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite file remembering delivery ids (replays are ignored).")
@click.option("--max-body", default=1_048_576, show_default=True, type=int,
              help="Largest payload accepted, in bytes (413 above).")
@click.option("--trust-templates", "trust_templates", multiple=True, metavar="OWNER/NAME",
              envvar="MLGEN_TRUST_TEMPLATES", show_envvar=True,
              help="Render this repository's own template overrides (its 'templates:' "
                   "folder, sandboxed); repeatable, or several in the variable separated by "
                   "spaces or commas. Other repositories, and every pull request from a fork, "
                   "are rendered with the built-in templates.")
def serve(host: str, port: int, db_path: Path, max_body: int,
          trust_templates: tuple[str, ...]) -> int:
    """Receive webhooks. The secret comes from MLGEN_WEBHOOK_SECRET, the token as for every
    GitHub command (GITHUB_TOKEN or a GitHub App, GITHUB_API_URL)."""
    from ..integrations.github import client as gh
    from ..publish.github.bot import Bot, BotConfig, github_handler
    from ._github_common import trusted_repositories

    secret = os.environ.get("MLGEN_WEBHOOK_SECRET", "")
    if not secret:
        raise UsageError("set MLGEN_WEBHOOK_SECRET to the webhook's secret")
    trusted = trusted_repositories(trust_templates, "--trust-templates")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    bot = Bot(BotConfig(secret.encode(), db_path, host, port, max_body),
              github_handler(gh.connect(), trusted_templates=trusted))
    click.echo(f"mlgen bot: listening on {bot.url} (POST /webhook, GET /healthz)", err=True)
    click.echo("mlgen bot: template overrides render for: "
               f"{', '.join(sorted(trusted)) if trusted else 'no repository'} (sandboxed; "
               "never for pull requests from forks)", err=True)
    # Kubernetes and `docker stop` send SIGTERM, which Python ignores as PID 1 in a container:
    # handled like Ctrl-C, the server stops accepting, the queued deliveries are finished and
    # the process exits 0 instead of being killed at the end of the grace period.
    signal.signal(signal.SIGTERM, _stop)
    try:
        bot.serve_forever()
    except KeyboardInterrupt:
        pass
    click.echo("mlgen bot: stopped", err=True)
    return 0


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
