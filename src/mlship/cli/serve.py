"""``mlship serve``: resolve ``ServeSettings`` from flags and environment, then run uvicorn.

Flags left unset defer to ``MLSHIP_*`` variables and the platform's own (see
``mlship.serving.settings``); ``settings_from_argv`` applies the very same rules to another
process's command line, which is how the image's healthcheck finds the port in use.

uvicorn runs under ``mlship.serving.server``: SIGTERM drains (``/ready`` 503, no new
connections, requests in flight finish within ``--grace-seconds``) and the exit status is 0.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlship.cli.common import console, guarded
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.serving.settings import ServeSettings

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def serve(
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Saved model dir.")] = None,
    contract: Annotated[
        str | None,
        typer.Argument(
            hidden=True, metavar="serve", help="'serve' selects SageMaker's contract (port 8080)."
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Interface to bind (default 127.0.0.1: this machine only; the Docker image "
            "passes 0.0.0.0). Use 0.0.0.0 to listen on every interface."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default 8888, or the platform's variable).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default 1).")
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(help="auto (ONNX when its parity check passed, else sklearn), onnx, sklearn."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="BLAS/OpenMP threads per worker (default 1).")
    ] = None,
    max_rows: Annotated[
        int | None, typer.Option(min=1, help="Most rows per request (default 10000).")
    ] = None,
    max_body_mb: Annotated[
        float | None, typer.Option(help="Largest body in MB, once gzip-decoded (default 10).")
    ] = None,
    access_log: Annotated[bool | None, typer.Option(help="Log every request (default no).")] = None,
    extra_columns: Annotated[
        str | None,
        typer.Option(
            help="Columns the model does not know: reject (422) or ignore (counted in /metrics "
            "as mlship_ignored_columns_total). Default: reject."
        ),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="Require an API key (Authorization: Bearer KEY or X-API-Key: KEY) on every "
            "route but /health, /ready and the platform probes. The file: one key a line, or "
            "sha256:<hex> of a key; # comments. Also MLSHIP_API_KEYS_FILE. Default: none."
        ),
    ] = None,
    model_sha256: Annotated[
        str | None,
        typer.Option(
            help="Refuse the model unless its manifest.json has this SHA-256 (the registry "
            "version's model.manifest_sha256 tag). Also MLSHIP_MODEL_SHA256. Default: no pin."
        ),
    ] = None,
    docs: Annotated[
        bool | None,
        typer.Option(
            help="Serve the interactive docs at /docs and /redoc (default no). Their scripts "
            "load from a public CDN, so the browser needs internet access; /openapi.json is "
            "always served."
        ),
    ] = None,
    otel: Annotated[
        bool | None,
        typer.Option(
            help="FastAPI's native OpenTelemetry: request spans and metrics to the providers "
            "OpenTelemetry is configured with (opentelemetry-instrument, "
            "FASTAPI_OTEL_AUTO_CONFIGURE). Default off: /metrics is Prometheus's.",
        ),
    ] = None,
    grace_seconds: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="After SIGTERM, the most seconds to finish requests in flight before exiting "
            "(default 20; Cloud Run allows 10 s in all: use 8).",
        ),
    ] = None,
    log_requests: Annotated[
        str | None,
        typer.Option(
            metavar="URI",
            help="Log scored requests (features, prediction, probabilities) as Parquet files "
            "to this folder or fsspec URI (gs://bucket/requests/, s3://...); CSV files when "
            "pyarrow is missing (the serving images); a URI needs fsspec (the batch extra). "
            "Also MLSHIP_LOG_REQUESTS. Default: off.",
        ),
    ] = None,
    log_sample_rate: Annotated[
        float | None,
        typer.Option(
            min=0, max=1, help="Share of requests logged, chosen by request id (default 1)."
        ),
    ] = None,
    log_queue_rows: Annotated[
        int | None,
        typer.Option(min=1, help="Most rows waiting to be written; more are dropped (10000)."),
    ] = None,
    log_rotate_rows: Annotated[
        int | None, typer.Option(min=1, help="Rows per request log file (default 10000).")
    ] = None,
    log_rotate_seconds: Annotated[
        float | None,
        typer.Option(help="Most seconds before a logged row is in a file (default 60)."),
    ] = None,
    drift: Annotated[
        str | None,
        typer.Option(
            help="Live drift gauges in /metrics (PSI of recent rows against the model's "
            "reference profile, null and unseen-category counters): auto (default: on when "
            "the model dir has a profile), on (refuse to start without one), off.",
        ),
    ] = None,
    drift_window: Annotated[
        int | None,
        typer.Option(
            min=10,
            help="Recent rows each worker's drift window holds (default 1000); with "
            "--workers N the gauges sum the N windows.",
        ),
    ] = None,
) -> None:
    """Serve a saved model over HTTP: POST /score, /health, /ready, /metadata, /metrics.

    Every option can also come from an MLSHIP_* variable (MLSHIP_PORT, MLSHIP_RUNTIME, ...);
    a flag beats the variable, which beats PORT / AIP_HTTP_PORT / SAGEMAKER_BIND_TO_PORT.
    Bodies may be gzip-compressed (Content-Encoding: gzip; the inflated size counts against
    --max-body-mb). SIGTERM drains: /ready turns 503, requests in flight finish, exit 0.
    A trailing word serve (how SageMaker starts a container) selects SageMaker's contract:
    port 8080, /ping and /invocations.
    """
    flags = dict(locals())

    def body() -> None:
        from mlship.monitoring.live import prepare

        settings = serve_settings(**flags)
        keys = check_api_keys(settings)
        logging_to = check_request_log(settings)
        drift_note, drift_env = prepare(settings)  # --workers N: the folder they share
        # Pin math-library pools before numpy loads here or in a worker (measured: two
        # OpenMP workers with default threads fell from 65 to 1 request/s on 2 cores).
        for var in THREAD_VARIABLES:
            os.environ[var] = str(settings.threads)
        os.environ.update(settings.to_env() | drift_env)
        import uvicorn

        from mlship.serving.server import run

        auth = f", {keys} key(s) required" if keys else ""
        console.print(  # the model dir by name only: logs show no host paths
            f"serving model dir {settings.model_dir.name!r} on "
            f"http://{settings.host}:{settings.listen_port} "
            f"({settings.workers} worker(s), {settings.threads} thread(s) each{auth}"
            f"{logging_to}{drift_note})",
            highlight=False,
        )
        config = uvicorn.Config(
            "mlship.serving.worker:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.listen_port,
            workers=settings.workers,
            loop="auto",
            http="auto",
            access_log=settings.access_log,
            log_level="info",
            timeout_graceful_shutdown=settings.grace_seconds,
        )
        try:
            status = run(config)
        finally:
            for folder in drift_env.values():
                shutil.rmtree(folder, ignore_errors=True)
        if status:
            raise typer.Exit(status)

    guarded(body)


def serve_settings(contract: str | None = None, **flags: Any) -> ServeSettings:
    """The settings ``mlship serve`` runs with: flags given, then the environment."""
    from pydantic import ValidationError

    from mlship.config import describe_validation_error
    from mlship.model.saved import is_model_dir
    from mlship.serving.settings import ServeSettings

    if contract not in (None, "serve"):
        raise MlshipError(f"unexpected argument {contract!r} (only 'serve' is known)")
    given = {key: value for key, value in flags.items() if value is not None}
    if "model" in given:
        given["model_dir"] = Path(given.pop("model")).resolve()
    elif not os.environ.get("MLSHIP_MODEL_DIR"):
        raise MlshipError("--model is required: the saved model dir to serve (or MLSHIP_MODEL_DIR)")
    if "api_key_file" in given:
        given["api_keys_file"] = Path(given.pop("api_key_file")).resolve()
    if "log_requests" in given:
        given["log_requests"] = absolute(given["log_requests"])
    if "max_body_mb" in given:
        given["max_body_bytes"] = int(given.pop("max_body_mb") * 1024 * 1024)
    if contract == "serve":
        given["sagemaker"] = True
    try:
        settings = ServeSettings(**given)
    except ValidationError as exc:
        raise MlshipError(describe_validation_error(exc, "serve setting")) from None
    if not is_model_dir(settings.model_dir):
        raise MlshipError(f"model {settings.model_dir}: not a saved model dir (no MLmodel file)")
    return settings


def check_api_keys(settings: ServeSettings) -> int:
    """How many API keys the settings' key file holds (0: none configured); bad file: error."""
    if settings.api_keys_file is None:
        return 0
    from mlship.serving.auth import ApiKeys

    return len(ApiKeys.from_file(settings.api_keys_file))


def absolute(uri: str) -> str:
    """A local folder as an absolute path (workers resolve nothing); a URI as it is."""
    return uri if "://" in uri else str(Path(uri).expanduser().resolve())


def check_request_log(settings: ServeSettings) -> str:
    """Where and how requests are logged, for the start line ('' when off); fails now if it
    cannot."""
    if settings.log_requests is None:
        return ""
    from mlship.serving.request_files import check_destination

    fmt = check_destination(settings.log_requests)
    uri = settings.log_requests  # a local folder by name only: logs show no host paths
    where = uri if "://" in uri else Path(uri).name
    why = " (no pyarrow here)" if fmt == "csv" else ""
    return f", logging {settings.log_sample_rate:g} of requests to {where!r} as {fmt}{why}"


def settings_from_argv(argv: list[str]) -> ServeSettings:
    """The settings of ``mlship serve ARGV...`` (as parsed by this very command)."""
    import typer.main

    single = typer.Typer()
    single.command()(serve)
    command = typer.main.get_command(single)
    context = command.make_context("serve", list(argv), resilient_parsing=True)
    return serve_settings(**context.params)
