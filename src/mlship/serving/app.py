"""The HTTP scoring service: FastAPI over one ``Predictor``, with every platform's routes.

``/score`` and the liveness, readiness, metadata and metrics routes are always there; the
Vertex AI and SageMaker routes are added when ``ServeSettings`` says the container runs there.
Handlers hold no protocol logic: a codec decodes the body and encodes the reply.

Every reply is complete and well-formed: an unexpected exception becomes a JSON 500, and any
5xx (and, once shutdown has begun, every reply) carries ``Connection: close``. With an API key
file, every route but the probes needs a key (``mlship.serving.auth``). ``/openapi.json`` is
written from the model's signature (``mlship.serving.openapi``), not from the handlers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from mlship.scoring.columns import Columns
from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import Code, InputError
from mlship.scoring.results import Prediction
from mlship.serving.auth import ApiKeys, RequireApiKey, open_paths
from mlship.serving.bodies import ACCEPT_ENCODING, encoding_of, gunzip, read_limited
from mlship.serving.codecs import tabular, vertex
from mlship.serving.direct import DirectRoutes, Handler
from mlship.serving.errors import error_handlers, error_response, internal_error, json_response
from mlship.serving.inline import InlineBudget
from mlship.serving.loader import ModelHolder
from mlship.serving.metrics import Instrument, Metrics
from mlship.serving.openapi import typed_openapi
from mlship.serving.openapi_protocols import protocol_routes
from mlship.serving.openapi_schemas import ROWS_FROM
from mlship.serving.protocols import Native, SageMaker, Score, kserve_v1_routes, oip_routes
from mlship.serving.request_log import REQUEST_ID, RequestLog, open_request_log, request_id, writing
from mlship.serving.settings import ServeSettings
from mlship.serving.shutdown import CloseConnections, Drain

log = logging.getLogger("mlship.serving")
NATIVE, VERTEX, SAGEMAKER = Score(), Native(vertex), SageMaker()


class Service:
    """The route handlers, over one model holder and one set of metrics."""

    def __init__(self, settings: ServeSettings, holder: ModelHolder, metrics: Metrics,
                 drain: Drain, request_log: RequestLog | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.holder = holder
        self.metrics = metrics
        self.drain = drain
        self.request_log = request_log
        self.inline = InlineBudget()  # on the loop when quick, else in the thread pool

    def predictor(self) -> Predictor | Response:
        holder = self.holder
        if holder.predictor is not None:
            return holder.predictor
        if holder.error:
            return error_response(503, f"model failed to load: {holder.error}")
        return error_response(503, "model is loading")

    async def score_with(self, request: Request, protocol: Native) -> Response:
        rid = request_id(request.headers)  # on every scoring reply, logged or not
        try:
            reply = await self.score_request(request, protocol, rid)
        except ClientDisconnect:  # the caller went away mid-upload: nobody to answer, no bug
            log.info("client disconnected before sending its whole body")
            reply = error_response(400, "client disconnected before sending its whole body")
        except Exception as exc:  # a bug of ours is a complete 500, never a dropped connection
            reply = internal_error(exc)
        reply.headers[REQUEST_ID] = rid
        return reply

    async def score_request(self, request: Request, protocol: Native, rid: str) -> Response:
        predictor = self.predictor()
        if isinstance(predictor, Response):
            return predictor
        try:
            encoding = encoding_of(request.headers.get("content-encoding"))
            context = protocol.context(request)
        except InputError as exc:
            reply = protocol.error(exc)
            reply.headers["Accept-Encoding"] = ACCEPT_ENCODING
            return reply
        body = await self.read_body(request)
        if isinstance(body, Response):
            return body
        content_type = request.headers.get("content-type")
        work = (predictor, protocol, body, content_type, encoding)
        kind = (protocol, tabular.media_type(content_type)[:100])  # as the codecs read it
        try:
            if self.inline.inline(kind, len(body), compressed=bool(encoding)):
                result, decoded, columns = self.timed_score(kind, *work, on_loop=True)
            else:  # slow (or inflating) bodies: keep the loop free for probes
                result, decoded, columns = await run_in_threadpool(self.timed_score, kind, *work)
        except InputError as exc:
            return protocol.error(exc)
        self.metrics.scored(columns, result)  # rows, and the live drift window
        if self.request_log is not None:  # scored rows only
            self.request_log.record(rid, request.scope["path"], predictor, columns, result)
        return protocol.reply(result, predictor, decoded if decoded is not None else context)

    async def read_body(self, request: Request) -> bytes | Response:
        limit = self.settings.max_body_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            return error_response(413, f"body of {int(length):,} bytes exceeds {limit:,}")
        body = await read_limited(request.stream(), limit)
        if body is None:
            return error_response(413, f"body exceeds {limit:,} bytes")
        return body

    def timed_score(  # noqa: PLR0913 - the work's parts, and where it runs
        self,
        kind: Hashable,
        predictor: Predictor,
        protocol: Native,
        body: bytes,
        content_type: str | None,
        encoding: str,
        on_loop: bool = False,
    ) -> tuple[Prediction, Any, Columns]:
        """``score_body``, its time per body byte learnt for ``kind`` (uncompressed bodies):
        on the loop by the wall clock (how long the loop was held), in the pool by the thread's
        CPU time (its wall time counts other pool threads' work) unless ``--threads`` > 1."""
        clock = time.perf_counter if on_loop or self.settings.threads > 1 else time.thread_time
        start, ok = clock(), False
        try:
            scored = self.score_body(predictor, protocol, body, content_type, encoding)
            ok = True
            return scored
        finally:
            if not encoding:  # a compressed size says nothing of the work
                self.inline.observe(kind, len(body), clock() - start, ok=ok)

    def score_body(
        self,
        predictor: Predictor,
        protocol: Native,
        body: bytes,
        content_type: str | None,
        encoding: str,
    ) -> tuple[Prediction, Any, Columns]:
        """The prediction, what the protocol's reply needs from the body, the model's input."""
        if encoding:
            body = gunzip(body, self.settings.max_body_bytes)
        columns, decoded = protocol.decode(
            body, content_type, predictor, self.settings.extra_columns, self.metrics.ignored
        )
        rows = len(next(iter(columns.values())))
        if rows > self.settings.max_rows:
            limit = self.settings.max_rows
            raise InputError.single(Code.too_large, f"{rows:,} rows exceed max_rows={limit:,}")
        return predictor.predict(columns), decoded, columns

    async def score(self, request: Request) -> Response:
        return await self.score_with(request, NATIVE)

    async def vertex_predict(self, request: Request) -> Response:
        return await self.score_with(request, VERTEX)

    async def invocations(self, request: Request) -> Response:
        return await self.score_with(request, SAGEMAKER)

    async def health(self) -> Response:
        return json_response({"status": "ok"})

    async def ready(self) -> Response:
        if self.drain.active:
            return error_response(503, "shutting down")
        predictor = self.predictor()
        return predictor if isinstance(predictor, Response) else json_response({"status": "ready"})

    async def metadata(self) -> Response:
        predictor = self.predictor()
        if isinstance(predictor, Response):
            return predictor
        limits = {
            "max_rows": self.settings.max_rows,
            "max_body_bytes": self.settings.max_body_bytes,
        }
        return json_response(
            {
                **asdict(predictor.info),
                **predictor.decision,  # decision_threshold, decision_rule, positive_class
                "signature": predictor.signature(),
                "column_order": predictor.column_names,
                "error_rows_start_at": ROWS_FROM,
                "runtime": predictor.runtime,
                "limits": limits,
                "protocols": protocol_routes(predictor, self.settings),
            }
        )

    async def prometheus(self) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _routes(
    service: Service, settings: ServeSettings
) -> list[tuple[str, str, Callable[..., Any], str]]:
    """(path, method, handler, summary); platform routes first, since the first match wins."""
    routes: list[tuple[str, str, Callable[..., Any], str]] = []
    if settings.vertex_predict_route:
        routes.append((settings.vertex_predict_route, "POST", service.vertex_predict, "Vertex AI."))
    if settings.health_route != "/health" or settings.vertex_predict_route:
        routes.append((settings.health_route, "GET", service.ready, ""))  # Vertex: readiness
    if settings.sagemaker:
        routes.append(("/ping", "GET", service.ready, "SageMaker health."))
        routes.append(("/invocations", "POST", service.invocations, "SageMaker scoring."))
    score_doc = "Score rows: records, arrays, instances, inputs, dataframe_split/records, CSV."
    return [
        *routes,
        ("/score", "POST", service.score, score_doc),
        ("/health", "GET", service.health, "Liveness."),
        ("/ready", "GET", service.ready, "Readiness: 503 until loaded."),
        ("/metadata", "GET", service.metadata, "Model and signature."),
        ("/metrics", "GET", service.prometheus, "Prometheus metrics."),
        *oip_routes(service),
        *kserve_v1_routes(service),
    ]


def create_app(
    settings: ServeSettings,
    *,
    background_load: bool = True,
    drain: Drain | None = None,
    settle_heap: bool = False,
) -> FastAPI:
    """Build the app for ``settings``; the model loads when the app starts.

    ``drain`` is the shutdown flag the server flips (``mlship.serving.shutdown``); a fresh
    one unless given. ``settle_heap``: the process is the server's own (``loader.settle_heap``).
    """
    holder = ModelHolder(settings, settle=settle_heap)
    metrics = Metrics(settings)  # with live drift when settings ask
    request_log = open_request_log(settings, metrics)  # each worker: its own writer and files
    service = Service(settings, holder, metrics, drain or Drain(), request_log)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder.start(background=background_load)
        async with writing(request_log, settings.grace_seconds, service.drain):
            yield  # after SIGTERM's drain, the log writes what is queued within the grace

    app = FastAPI(
        title="mlship scoring service",
        lifespan=lifespan,
        # Swagger UI and ReDoc load their scripts from a CDN: off unless asked (--docs).
        docs_url="/docs" if settings.docs else None,
        redoc_url="/redoc" if settings.docs else None,
        # Our series are Prometheus's (/metrics). Unless asked for (--otel), FastAPI's native
        # OpenTelemetry is off: it asks three global providers on every request.
        telemetry=None if settings.otel else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = service
    routes = _routes(service, settings)
    for path, method, handler, summary in routes:
        app.add_api_route(
            path,
            handler,
            methods=[method],
            summary=summary or None,
            include_in_schema=bool(summary),
        )
    typed_openapi(app, holder, settings, [(p, m, s) for p, m, _, s in routes], open_paths(settings))
    error_handlers(app)
    # The handlers DirectRoutes may answer: they take the bare request and never raise.
    scoring = {service.score, service.vertex_predict, service.invocations}
    direct = [(method, path, handler) for path, method, handler, _ in routes if handler in scoring]
    _middleware(app, service, known={path for path, *_ in routes}, direct=direct)
    return app


def _middleware(
    app: FastAPI, service: Service, known: set[str], direct: list[tuple[str, str, Handler]]
) -> None:
    """Innermost first: the scoring routes (``mlship.serving.direct``), authentication, then
    the connection rule, then metrics (outermost)."""
    settings = service.settings
    app.add_middleware(DirectRoutes, routes=direct)
    if settings.api_keys_file is not None:
        keys = ApiKeys.from_file(settings.api_keys_file)
        app.add_middleware(RequireApiKey, keys=keys, open_paths=open_paths(settings))
    app.add_middleware(CloseConnections, drain=service.drain)
    app.add_middleware(Instrument, metrics=service.metrics, known=known)
