"""Vertex AI's prediction contract: ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out.

Each prediction of a classifier is ``{"label", "probabilities": {class: p}}``; of a regressor,
the value. Requests decode like ``/score`` bodies.
"""

from __future__ import annotations

from typing import Any

from mlship.scoring.predictor import Predictor
from mlship.scoring.results import Prediction
from mlship.serving.codecs import cells
from mlship.serving.codecs.native import decode

__all__ = ["decode", "encode"]


def encode(result: Prediction, predictor: Predictor) -> dict[str, Any]:
    del predictor  # the reply carries no model identity in Vertex's contract
    probabilities = cells.probability_records(result.probabilities, result.classes)
    if probabilities is None:
        return {"predictions": result.predictions}
    return {
        "predictions": [
            {"label": label, "probabilities": probs}
            for label, probs in zip(result.predictions, probabilities, strict=True)
        ]
    }
