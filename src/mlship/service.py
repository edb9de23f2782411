"""The HTTP scoring service: FastAPI over one ``Predictor``, plus the cloud route contracts.

One image serves every platform; which routes and port it uses is chosen by environment:

- default: port 8888, ``POST /score``;
- Cloud Run / KServe: ``PORT`` sets the port;
- Vertex AI: ``AIP_HTTP_PORT``, ``AIP_PREDICT_ROUTE`` (``{"instances"}`` in,
  ``{"predictions"}`` out) and ``AIP_HEALTH_ROUTE``;
- SageMaker: the container's argument ``serve`` -> port 8080, ``GET /ping``,
  ``POST /invocations``.

``/score`` and the liveness/readiness/metadata/metrics routes stay available on every platform.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlship.errors import InputError, MlshipError
from mlship.payload import PayloadError, decode
from mlship.predictor import Predictor

log = logging.getLogger("mlship.service")
OPTIONS_ENV = "MLSHIP_SERVE_OPTIONS"
# Bodies up to this size are scored on the event loop (tens of microseconds of work, where a
# thread hop would cost more); larger ones in the thread pool so probes are never starved.
INLINE_BYTES = 64 * 1024


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past ``limit`` (chunked bodies have no length)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class ServeOptions:
    """How the service runs; resolved once by ``mlship serve`` and handed to each worker."""

    model_dir: str
    host: str = "0.0.0.0"
    port: int = 8888
    workers: int = 1
    threads: int = 1
    runtime: str = "auto"
    max_rows: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    health_route: str = "/health"
    vertex_predict_route: str | None = None
    sagemaker: bool = False
    access_log: bool = False


def apply_platform(options: ServeOptions, env: Mapping[str, str], sagemaker: bool) -> ServeOptions:
    """Adjust port and routes to the platform the environment describes."""
    if sagemaker:
        return replace(options, port=8080, sagemaker=True)
    if "AIP_HTTP_PORT" in env:
        return replace(
            options,
            port=int(env["AIP_HTTP_PORT"]),
            vertex_predict_route=env.get("AIP_PREDICT_ROUTE", "/predict"),
            health_route=env.get("AIP_HEALTH_ROUTE", options.health_route),
        )
    if "PORT" in env:
        return replace(options, port=int(env["PORT"]))
    return options


def _json(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


def _error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> Response:
    return _json({"error": message, "details": details or []}, status)


class Metrics:
    """Prometheus series of one app instance (its own registry, so tests can build many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlship_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "mlship_errors",
            "Requests answered with 4xx/5xx, by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlship_request_seconds",
            "Request latency by route.",
            ["route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.rows = Counter("mlship_rows_scored", "Rows scored.", registry=self.registry)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        if status >= 400:
            self.errors.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)


class _Instrument:
    """Pure ASGI middleware: count, time and catch everything (cheaper than BaseHTTPMiddleware)."""

    def __init__(self, app: Any, metrics: Metrics, known: set[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.known = known

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def capture(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope["path"] if scope["path"] in self.known else "other"
            self.metrics.observe(route, status[0], time.perf_counter() - start)


class ModelHolder:
    """Loads the model once, in the background, so liveness answers while it loads."""

    def __init__(self, model_dir: str, runtime: str = "auto", threads: int = 1) -> None:
        self.model_dir = model_dir
        self.runtime = runtime
        self.threads = threads
        self.predictor: Predictor | None = None
        self.error: str | None = None
        self.loaded = threading.Event()

    def load(self) -> None:
        try:
            self.predictor = Predictor.load(
                self.model_dir,
                runtime=self.runtime,  # type: ignore[arg-type]
                threads=self.threads,
            )
            info = self.predictor.info
            log.info("model %s v%s loaded (%s)", info.name, info.version, self.predictor.runtime)
        except MlshipError as exc:
            self.error = str(exc)
            log.error("model failed to load: %s", exc)
        except Exception as exc:  # a broken artifact must not kill the liveness endpoint
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("model failed to load")
        finally:
            self.loaded.set()

    def start(self, background: bool = True) -> None:
        if background:
            threading.Thread(target=self.load, name="model-loader", daemon=True).start()
        else:
            self.load()


def create_app(options: ServeOptions, *, background_load: bool = True) -> FastAPI:
    """Build the app for ``options``; the model loads when the app starts."""
    holder = ModelHolder(options.model_dir, options.runtime, options.threads)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder.start(background=background_load)
        yield

    app = FastAPI(
        title="mlship scoring service",
        version="1",
        description="Scores rows with a model trained by mlship. POST records to /score.",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.options = options

    def ready_predictor() -> Predictor | Response:
        if holder.predictor is not None:
            return holder.predictor
        if holder.error:
            return _error(503, f"model failed to load: {holder.error}")
        return _error(503, "model is loading")

    async def score_body(request: Request, vertex: bool) -> Response:
        predictor = ready_predictor()
        if isinstance(predictor, Response):
            return predictor
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > options.max_body_bytes:
            return _error(413, f"body of {int(length):,} bytes exceeds {options.max_body_bytes:,}")
        body = await _read_limited(request, options.max_body_bytes)
        if body is None:
            return _error(413, f"body exceeds {options.max_body_bytes:,} bytes")
        content_type = request.headers.get("content-type")
        try:
            if len(body) <= INLINE_BYTES:
                result, rows = score_rows(predictor, body, content_type)
            else:  # big bodies take milliseconds: keep the event loop free for probes
                result, rows = await run_in_threadpool(score_rows, predictor, body, content_type)
        except InputError as exc:  # PayloadError included: each knows its status
            return _error(exc.status, exc.message, exc.details)
        metrics.rows.inc(rows)
        probabilities = result.probability_records()
        if vertex:
            if probabilities is None:
                return _json({"predictions": result.predictions})
            return _json(
                {
                    "predictions": [
                        {"label": label, "probabilities": probs}
                        for label, probs in zip(result.predictions, probabilities, strict=True)
                    ]
                }
            )
        reply: dict[str, Any] = {"predictions": result.predictions}
        if probabilities is not None:
            reply["probabilities"] = probabilities
        info = predictor.info
        reply["model"] = {"name": info.name, "version": info.version, "run_id": info.run_id}
        return _json(reply)

    def score_rows(predictor: Predictor, body: bytes, content_type: str | None) -> Any:
        columns = decode(body, content_type, predictor)
        rows = len(next(iter(columns.values())))
        if rows > options.max_rows:
            raise PayloadError(f"{rows:,} rows exceed max_rows={options.max_rows:,}", 413)
        return predictor.predict(columns), rows

    async def score(request: Request) -> Response:
        return await score_body(request, vertex=False)

    async def vertex_predict(request: Request) -> Response:
        return await score_body(request, vertex=True)

    async def health() -> Response:
        return _json({"status": "ok"})

    async def ready() -> Response:
        predictor = ready_predictor()
        if isinstance(predictor, Response):
            return predictor
        return _json({"status": "ready"})

    async def metadata() -> Response:
        predictor = ready_predictor()
        if isinstance(predictor, Response):
            return predictor
        info = predictor.info
        return _json(
            {
                **asdict(info),
                "signature": predictor.signature(),
                "runtime": predictor.runtime,
                "limits": {"max_rows": options.max_rows, "max_body_bytes": options.max_body_bytes},
            }
        )

    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # Platform routes first: the first match wins, so AIP_PREDICT_ROUTE=/score answers in
    # Vertex's shape and AIP_HEALTH_ROUTE=/health reports readiness, as Vertex expects.
    known: set[str] = set()
    if options.vertex_predict_route:
        app.add_api_route(
            options.vertex_predict_route, vertex_predict, methods=["POST"], summary="Vertex AI."
        )
        known.add(options.vertex_predict_route)
    if options.health_route != "/health" or options.vertex_predict_route:
        app.add_api_route(options.health_route, ready, methods=["GET"], include_in_schema=False)
        known.add(options.health_route)
    if options.sagemaker:
        app.add_api_route("/ping", ready, methods=["GET"], summary="SageMaker health.")
        app.add_api_route("/invocations", score, methods=["POST"], summary="SageMaker scoring.")
        known |= {"/ping", "/invocations"}
    score_doc = "Score rows: records, arrays, instances, dataframe_split/records, or CSV."
    app.add_api_route("/score", score, methods=["POST"], summary=score_doc)
    app.add_api_route("/health", health, methods=["GET"], summary="Liveness.")
    app.add_api_route("/ready", ready, methods=["GET"], summary="Readiness: 503 until loaded.")
    app.add_api_route("/metadata", metadata, methods=["GET"], summary="Model and signature.")
    app.add_api_route("/metrics", prometheus, methods=["GET"], summary="Prometheus metrics.")
    known |= {"/score", "/health", "/ready", "/metadata", "/metrics"}

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        return _error(422, "invalid request", [{"error": str(e)} for e in exc.errors()])

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:  # pragma: no cover
        log.exception("unhandled error")
        return _error(500, f"internal error: {type(exc).__name__}")

    app.add_middleware(_Instrument, metrics=metrics, known=known)
    return app


def options_to_env(options: ServeOptions) -> str:
    return orjson.dumps(asdict(options)).decode()


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: options come from ``mlship serve``."""
    raw = os.environ.get(OPTIONS_ENV)
    if not raw:
        raise RuntimeError(f"{OPTIONS_ENV} is not set; start the service with `mlship serve`")
    options = ServeOptions(**orjson.loads(raw))
    _limit_threads(options.threads)
    return create_app(options)


def _limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP pools per worker (over-subscription collapses throughput under load).

    ``mlship serve`` already set OMP_NUM_THREADS and friends before any math library loaded;
    threadpoolctl (present wherever scikit-learn is) also caps pools opened some other way.
    onnxruntime's own pool is sized by the session options.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=threads)
