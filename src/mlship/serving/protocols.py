"""Each platform's routes over the same scoring pipeline: how a protocol decodes a body,
replies, and speaks its errors.

- ``/score``: ``Score`` (records, columnar JSON or Arrow replies); Vertex's predict route:
  ``Native``;
- the Open Inference Protocol (KServe v2, Triton, MLServer) under ``/v2``: ``OpenInference``;
- KServe v1 under ``/v1/models/{name}``: ``Native`` over the v1 codec, plus its status routes;
- SageMaker's reply in the format ``Accept`` names: ``SageMaker``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Request
from fastapi.responses import Response

from mlship.scoring.columns import Columns
from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import InputError
from mlship.scoring.results import Prediction
from mlship.serving.codecs import arrow, kserve_v1, native, oip, sagemaker
from mlship.serving.errors import input_error_response, json_response, status_of

if TYPE_CHECKING:
    from mlship.serving.loader import ModelHolder
    from mlship.serving.shutdown import Drain


class Service(Protocol):
    """What the protocol routes need of the service (``mlship.serving.app.Service``)."""

    holder: ModelHolder
    drain: Drain

    def predictor(self) -> Predictor | Response: ...

    async def score_with(self, request: Request, protocol: Native) -> Response: ...


Route = tuple[str, str, Callable[..., Any], str]


class Native:
    """A codec module with ``decode(...) -> Columns`` and ``encode(result, predictor)``."""

    def __init__(self, codec: ModuleType) -> None:
        self.codec = codec

    def context(self, request: Request) -> Any:
        """What the reply needs from the request's headers (nothing, here)."""
        del request
        return None

    def decode(self, body: bytes, content_type: str | None, predictor: Predictor,
               extra: Any, on_ignored: Any) -> tuple[Columns, Any]:  # fmt: skip
        return self.codec.decode(body, content_type, predictor, extra, on_ignored), None

    def reply(self, result: Prediction, predictor: Predictor, context: Any) -> Response:
        del context
        return json_response(self.codec.encode(result, predictor))

    def error(self, exc: InputError) -> Response:
        return input_error_response(exc)


class Score(Native):
    """``/score``: the reply as records (default), columnar JSON or Arrow, as the request asks
    (``native.reply_format``: ``?format=``, or ``Accept`` naming Arrow)."""

    def __init__(self) -> None:
        super().__init__(native)

    def context(self, request: Request) -> Any:
        return native.reply_format(
            request.query_params.get("format"), request.headers.get("accept")
        )

    def reply(self, result: Prediction, predictor: Predictor, context: Any) -> Response:
        if context == native.ARROW:
            return Response(arrow.encode(result, predictor), media_type=arrow.MEDIA_TYPE)
        if context == native.COLUMNAR:
            return json_response(native.encode_columnar(result, predictor))
        return json_response(native.encode(result, predictor))


class OpenInference(Native):
    """Errors are ``{"error": "..."}``; rows that do not fit are a 400, as the protocol says."""

    def __init__(self) -> None:
        super().__init__(oip)

    def context(self, request: Request) -> Any:
        """Refuse the binary tensor data extension before reading a body it would garble."""
        if request.headers.get(oip.BINARY_HEADER) is not None:
            raise oip.binary_unsupported()
        return None

    def decode(self, body: bytes, content_type: str | None, predictor: Predictor,
               extra: Any, on_ignored: Any) -> tuple[Columns, Any]:  # fmt: skip
        return oip.decode(body, content_type, predictor, extra, on_ignored)

    def reply(self, result: Prediction, predictor: Predictor, context: Any) -> Response:
        return json_response(oip.encode(result, predictor, context))

    def error(self, exc: InputError) -> Response:
        status = status_of(exc)
        return json_response(oip.error(exc), 400 if status == 422 else status)


class SageMaker(Native):
    """The reply in the first format ``Accept`` lists (JSON, CSV or JSON Lines)."""

    def __init__(self) -> None:
        super().__init__(sagemaker)

    def context(self, request: Request) -> Any:
        return sagemaker.reply_type(request.headers.get("accept"))

    def reply(self, result: Prediction, predictor: Predictor, context: Any) -> Response:
        return Response(sagemaker.render(result, predictor, context), media_type=context)


class _OipHandlers:
    """The Open Inference Protocol's handlers over one service."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.protocol = OpenInference()

    def model(self, name: str, version: str | None) -> Predictor | Response:
        predictor = self.service.predictor()
        if isinstance(predictor, Response):
            return json_response({"error": "model is not ready"}, 503)
        info = predictor.info
        if name != info.name or (version is not None and version != info.version):
            wanted = name if version is None else f"{name} version {version}"
            return json_response(
                {"error": f"no model {wanted} (serving {info.name} version {info.version})"}, 404
            )
        return predictor

    async def metadata(self, name: str, version: str | None = None) -> Response:
        found = self.model(name, version)
        return found if isinstance(found, Response) else json_response(oip.model_metadata(found))

    async def ready(self, name: str, version: str | None = None) -> Response:
        found = self.model(name, version)
        if isinstance(found, Response):
            return found
        return json_response({"name": name, "ready": True})

    async def infer(self, request: Request, name: str, version: str | None = None) -> Response:
        found = self.model(name, version)
        if isinstance(found, Response):
            return found
        return await self.service.score_with(request, self.protocol)

    async def server(self) -> Response:
        return json_response(oip.server_metadata())

    async def live(self) -> Response:
        return json_response({"live": True})

    async def server_ready(self) -> Response:
        ready = not self.service.drain.active and self.service.holder.predictor is not None
        return json_response({"ready": ready}, 200 if ready else 503)


def oip_routes(service: Service) -> list[Route]:
    """The Open Inference Protocol's REST routes, versioned and not."""
    h = _OipHandlers(service)
    routes: list[Route] = [
        ("/v2", "GET", h.server, "Open Inference Protocol: server metadata."),
        ("/v2/health/live", "GET", h.live, "Open Inference Protocol: liveness."),
        ("/v2/health/ready", "GET", h.server_ready, "Open Inference Protocol: readiness."),
    ]
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            (base, "GET", h.metadata, "Open Inference Protocol: model metadata."),
            (f"{base}/ready", "GET", h.ready, "Open Inference Protocol: model readiness."),
            (f"{base}/infer", "POST", h.infer, "Open Inference Protocol: inference."),
        ]
    return routes


def kserve_v1_routes(service: Service) -> list[Route]:
    """KServe's v1 data plane: ``GET /``, model status, ``:predict``."""
    protocol = Native(kserve_v1)

    async def root() -> Response:
        return json_response({"status": "alive"})

    async def status(name: str) -> Response:
        predictor = service.predictor()
        current = None if isinstance(predictor, Response) else predictor
        if current is not None and name != current.info.name:
            return json_response({"error": f"no model {name} (serving {current.info.name})"}, 404)
        return json_response(kserve_v1.model_status(current, name), 200 if current else 503)

    async def predict(request: Request, name: str) -> Response:
        predictor = service.predictor()
        if not isinstance(predictor, Response) and name != predictor.info.name:
            return json_response({"error": f"no model {name} (serving {predictor.info.name})"}, 404)
        return await service.score_with(request, protocol)

    return [
        ("/", "GET", root, "KServe v1: liveness."),
        ("/v1/models/{name}", "GET", status, "KServe v1: model status."),
        ("/v1/models/{name}:predict", "POST", predict, "KServe v1: predict."),
    ]
