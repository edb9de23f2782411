"""KServe's v1 data plane: ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out.

Instances are records or arrays in signature order, as on ``/score``. Classifiers also get
``probabilities`` (one ``{class: p}`` per row) beside ``predictions``.
"""

from __future__ import annotations

from typing import Any

from mlship.scoring.columns import Columns
from mlship.scoring.predictor import ExtraColumns, Predictor
from mlship.scoring.results import Prediction
from mlship.serving.codecs import cells, native, tabular


def decode(
    body: bytes,
    content_type: str | None,
    predictor: Predictor,
    extra: ExtraColumns,
    on_ignored: tabular.OnIgnored = None,
) -> Columns:
    if not tabular.is_json(tabular.media_type(content_type)):
        return native.decode(body, content_type, predictor, extra, on_ignored)  # names the type
    document = tabular.load_json(body)
    if not isinstance(document, dict) or "instances" not in document:
        raise tabular.malformed('a v1 predict request is {"instances": [...]}')
    return native.document(document, predictor, extra, on_ignored)


def encode(result: Prediction, predictor: Predictor) -> dict[str, Any]:
    del predictor
    reply: dict[str, Any] = {"predictions": result.predictions}
    probabilities = cells.probability_records(result.probabilities, result.classes)
    if probabilities is not None:
        reply["probabilities"] = probabilities
    return reply


def model_status(predictor: Predictor | None, name: str) -> dict[str, Any]:
    """``GET /v1/models/{name}``: what the KServe client reads (``ready``)."""
    return {"name": name, "ready": predictor is not None}
