"""SageMaker's ``/invocations``: JSON, CSV (headerless, as the SDK's ``CSVSerializer`` sends)
or JSON Lines in; the reply in the format the ``Accept`` header asks for.

- ``application/json`` (default): the ``/score`` reply;
- ``text/csv``: one line per row, the label then each class probability (no header);
- ``application/jsonlines``: one ``{"prediction", "probabilities"}`` object per line.
"""

from __future__ import annotations

import csv
import io

import orjson

from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import Code, InputError
from mlship.scoring.results import Prediction
from mlship.serving.codecs import cells, native, tabular
from mlship.serving.codecs.native import decode

__all__ = ["decode", "render"]
REPLY_TYPES = ("application/json", "text/csv", "application/jsonlines")


def reply_type(accept: str | None) -> str:
    """The reply type the ``Accept`` header prefers (RFC 9110): the highest ``q`` among the
    types we can write, the first listed on a tie; ``q=0`` excludes; a type's own entry beats
    what a wildcard gives it; no header: JSON."""
    explicit: dict[str, float] = {}
    wildcard: dict[str, float] = {}
    for part in (accept or "*/*").split(","):
        if not part.strip():
            continue
        kind, q = tabular.media_type(part), _quality(part)
        for name in _kinds(kind):
            (wildcard if "*" in kind else explicit).setdefault(name, q)
    offered = {**{k: v for k, v in wildcard.items() if k not in explicit}, **explicit}
    ranked = [(q, name) for name, q in offered.items() if q > 0]
    if not ranked:
        raise InputError.single(
            Code.not_acceptable, f"cannot reply as {accept!r}; accept one of {REPLY_TYPES}"
        )
    best = max(q for q, _ in ranked)
    order = [name for name in [*explicit, *wildcard] if offered.get(name) == best]
    return order[0]


def _kinds(kind: str) -> tuple[str, ...]:
    """The reply types one ``Accept`` item names (a wildcard names several, JSON first)."""
    if kind == "*/*":
        return ("application/json", "application/jsonlines", "text/csv")
    if kind == "application/*":
        return ("application/json", "application/jsonlines")
    if kind == "text/*":
        return ("text/csv",)
    if kind in REPLY_TYPES:
        return (kind,)
    return ("application/jsonlines",) if kind in tabular.JSON_LINES_TYPES else ()


def _quality(part: str) -> float:
    """The ``q`` parameter of one ``Accept`` item; 1 when absent, 0 when unreadable."""
    for param in part.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def render(result: Prediction, predictor: Predictor, kind: str) -> bytes:
    if kind == "text/csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        probabilities = result.probabilities.tolist() if result.probabilities is not None else None
        for i, label in enumerate(result.predictions):
            writer.writerow([label, *(probabilities[i] if probabilities else [])])
        return out.getvalue().encode()
    if kind == "application/jsonlines":
        records = cells.probability_records(result.probabilities, result.classes)
        lines = [
            orjson.dumps(
                {"prediction": label, **({"probabilities": records[i]} if records else {})}
            )
            for i, label in enumerate(result.predictions)
        ]
        return b"\n".join(lines) + b"\n"
    return orjson.dumps(native.encode(result, predictor), option=orjson.OPT_SERIALIZE_NUMPY)
