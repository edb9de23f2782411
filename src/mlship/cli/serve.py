"""``mlship serve``: resolve ``ServeSettings`` from flags and environment, then run uvicorn.

Flags left unset defer to ``MLSHIP_*`` variables and the platform's own (see
``mlship.serving.settings``); ``settings_from_argv`` applies the very same rules to another
process's command line, which is how the image's healthcheck finds the port in use.
"""

from __future__ import annotations

import os
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
        typer.Argument(hidden=True, help="'serve' selects SageMaker's contract (port 8080)."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind [default: 0.0.0.0].")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port [default: 8888, or the platform's variable].")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes [1].")] = None,
    runtime: Annotated[
        str | None,
        typer.Option(help="auto (ONNX when its parity check passed, else sklearn), onnx, sklearn."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="BLAS/OpenMP threads per worker [1].")
    ] = None,
    max_rows: Annotated[
        int | None, typer.Option(min=1, help="Most rows per request [10000].")
    ] = None,
    max_body_mb: Annotated[float | None, typer.Option(help="Largest body, MB [10].")] = None,
    access_log: Annotated[bool | None, typer.Option(help="Log every request [no].")] = None,
) -> None:
    """Serve a saved model over HTTP: POST /score, /health, /ready, /metadata, /metrics.

    Every option can also come from an MLSHIP_* variable (MLSHIP_PORT, MLSHIP_RUNTIME, ...);
    a flag beats the variable, which beats PORT / AIP_HTTP_PORT / SAGEMAKER_BIND_TO_PORT.
    """
    flags = dict(locals())

    def body() -> None:
        settings = serve_settings(**flags)
        # Pin math-library pools before numpy loads here or in a worker (measured: two
        # OpenMP workers with default threads fell from 65 to 1 request/s on 2 cores).
        for var in THREAD_VARIABLES:
            os.environ[var] = str(settings.threads)
        os.environ.update(settings.to_env())
        import uvicorn

        console.print(
            f"serving {settings.model_dir} on http://{settings.host}:{settings.listen_port} "
            f"({settings.workers} worker(s), {settings.threads} thread(s) each)",
            highlight=False,
        )
        uvicorn.run(
            "mlship.serving.worker:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.listen_port,
            workers=settings.workers,
            loop="auto",
            http="auto",
            access_log=settings.access_log,
            log_level="info",
            timeout_graceful_shutdown=20,
        )

    guarded(body)


def serve_settings(contract: str | None = None, **flags: Any) -> ServeSettings:
    """The settings ``mlship serve`` runs with: flags given, then the environment."""
    from pydantic import ValidationError

    from mlship.config import describe_validation_error
    from mlship.serving.settings import ServeSettings

    if contract not in (None, "serve"):
        raise MlshipError(f"unexpected argument {contract!r} (only 'serve' is known)")
    given = {key: value for key, value in flags.items() if value is not None}
    if "model" in given:
        given["model_dir"] = Path(given.pop("model")).resolve()
    if "max_body_mb" in given:
        given["max_body_bytes"] = int(given.pop("max_body_mb") * 1024 * 1024)
    if contract == "serve":
        given["sagemaker"] = True
    try:
        settings = ServeSettings(**given)
    except ValidationError as exc:
        raise MlshipError(describe_validation_error(exc, "serve setting")) from None
    if not (settings.model_dir / "MLmodel").is_file():
        raise MlshipError(f"model {settings.model_dir}: not a saved model dir (no MLmodel file)")
    return settings


def settings_from_argv(argv: list[str]) -> ServeSettings:
    """The settings of ``mlship serve ARGV...`` (as parsed by this very command)."""
    import typer.main

    single = typer.Typer()
    single.command()(serve)
    command = typer.main.get_command(single)
    context = command.make_context("serve", list(argv), resilient_parsing=True)
    return serve_settings(**context.params)
