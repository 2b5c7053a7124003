"""`mlgen serve`: parse options (flags over mlgen.yaml over defaults), then run the server.

The server itself (`mlgen.models.serving.server`) and its heavy imports load only after the
options are valid, so `mlgen serve --help` stays as fast as the rest of the CLI.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from mlgen.models import contract

from ..errors import MlgenError, UsageError
from ..project import Project, project_dir


def _names(values: tuple[str, ...]) -> tuple[str, ...]:
    """--numeric a,b --numeric c -> (a, b, c)."""
    return tuple(n.strip() for v in values for n in v.split(",") if n.strip())


@click.command("serve")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              help="joblib artifact [spec: model.artifact, relative to -C].")
@click.option("--name", help="Model name in V2 URLs and metrics [spec: name].")
@click.option(
    "--numeric", multiple=True, metavar="A,B", help="Numeric features [spec: model.features]."
)
@click.option("--categorical", multiple=True, metavar="A,B", help="Categorical features [spec].")
@click.option("--task", type=click.Choice(["classification", "regression"]),
              help="[spec: model.task; without a spec: asked of the model].")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, help="[spec: serve.port; default 8080; 0 = any free port].")
@click.option("--workers", type=int, help="Worker processes [spec: serve.workers; default 2].")
@click.option("--max-batch-size", type=int, help="Rows per model call [spec; default 32].")
@click.option(
    "--max-wait-ms", type=float, help="Longest a batch waits for more rows [spec; default 2]."
)
@click.option("--max-body-bytes", type=int, default=1_048_576, show_default=True,
              help="Larger request bodies get 413.")
@click.option("--request-log", "request_log", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the sampled JSON-lines request log [spec: serve.request_log.path].")
@click.option("--sample-rate", type=float, help="Share of rows logged, 0..1; 0 turns logging off "
              "[spec; default 0.1].")
@click.option("--log-max-bytes", type=int, help="Rotate the request log at this size [spec].")
@click.option("--log-backups", type=int, help="Rotated request-log files kept [spec].")
@click.option("--poll-interval", type=float, default=2.0, show_default=True,
              help="Seconds between checks of the artifact for a new model (a broken or "
                   "deleted one is logged and the loaded model keeps serving).")
@click.option("--graceful-timeout", type=float, default=25.0, show_default=True,
              help="Seconds SIGTERM waits for in-flight requests.")
@click.option("--metrics-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Shared folder for the workers' metric files [default: a temporary folder].")
@click.option("--shadow-url", envvar=contract.SHADOW_URL_ENV, metavar="URL",
              help="Mirror answered prediction requests to this shadow challenger "
                   "(http://HOST:PORT; env MLGEN_SHADOW_URL, set on the champion by "
                   "kubernetes.challenger mode: shadow).")
@click.pass_context
def command(ctx: click.Context, /, **opts: Any) -> int:
    """Serve the model: KServe V2 (Open Inference Protocol), POST /predict, /metrics.

    Reads mlgen.yaml from the -C folder when there is one; flags win over it. Without a spec,
    give --model, --name and the features (--numeric/--categorical). The model is loaded
    before the server listens: a missing or unloadable artifact exits 2.
    """
    config = build_config(project_dir(ctx), opts)
    _check_runtime()
    from mlgen.models.serving.server import serve

    try:
        return serve(config)
    except OSError as exc:
        raise MlgenError(f"mlgen serve: {exc}") from None


def build_config(folder: Path, opts: dict[str, Any]) -> Any:
    from mlgen.models.serving.config import RequestLogConfig, ServeConfig

    spec = Project(folder).load_optional()
    numeric, categorical = _names(opts["numeric"]), _names(opts["categorical"])
    if spec is not None:
        serve_spec, rl = spec.serve, spec.serve.request_log
        if not numeric and not categorical:
            numeric = tuple(spec.model.features.numeric)
            categorical = tuple(spec.model.features.categorical)
        defaults: dict[str, Any] = {
            "model_path": folder / spec.model.artifact, "name": spec.name, "task": spec.model.task,
            "port": serve_spec.port, "workers": serve_spec.workers,
            "max_batch_size": serve_spec.max_batch_size, "max_wait_ms": serve_spec.max_wait_ms,
            "request_log": Path(rl.path), "sample_rate": rl.sample_rate,
            "log_max_bytes": rl.max_bytes, "log_backups": rl.backups,
        }
    else:
        base = ServeConfig(Path(), "model", (), ())  # the server's own defaults
        defaults = {"model_path": None, "name": base.name, "task": None, "port": base.port,
                    "workers": base.workers, "max_batch_size": base.max_batch_size,
                    "max_wait_ms": base.max_wait_ms, "request_log": None,
                    "sample_rate": contract.REQUEST_LOG_SAMPLE_RATE,
                    "log_max_bytes": contract.REQUEST_LOG_MAX_BYTES,
                    "log_backups": contract.REQUEST_LOG_BACKUPS}

    def pick(key: str) -> Any:
        return opts[key] if opts.get(key) is not None else defaults[key]

    model_path = pick("model_path")
    if model_path is None:
        raise UsageError(f"no mlgen.yaml in {folder}: give --model PATH, --name and "
                         "--numeric/--categorical")
    log_dir = pick("request_log")
    config = ServeConfig(
        model_path=Path(model_path), name=pick("name"), numeric=numeric, categorical=categorical,
        task=pick("task"), host=opts["host"], port=pick("port"), workers=pick("workers"),
        max_batch_size=pick("max_batch_size"), max_wait_ms=pick("max_wait_ms"),
        max_body_bytes=opts["max_body_bytes"],
        request_log=RequestLogConfig(Path(log_dir), pick("sample_rate"), pick("log_max_bytes"),
                                     pick("log_backups")) if log_dir is not None else None,
        poll_interval_s=opts["poll_interval"], graceful_timeout_s=opts["graceful_timeout"],
        metrics_dir=opts.get("metrics_dir"), shadow_url=opts.get("shadow_url") or None,
    )
    problems = config.problems()
    if problems:
        raise UsageError("mlgen serve: " + "; ".join(problems))
    return config


def _check_runtime() -> None:
    """Fail here, in one line, rather than in every forked worker (which would be restarted
    forever).

    find_spec only looks the modules up: importing sklearn before the fork would start BLAS
    threads in the supervisor for nothing.
    """
    from importlib.util import find_spec

    from .. import DISTRIBUTION
    from ..errors import MissingExtraError

    missing = [m for m in ("sklearn", "pandas", "joblib", "httptools") if find_spec(m) is None]
    if missing:
        raise MissingExtraError(f"mlgen serve needs the 'runtime' extra ({', '.join(missing)} "
                                f"not installed): pip install '{DISTRIBUTION}[runtime]'")


