"""The Arrow reply as a stream of its own parts (``codecs.arrow.encode``), over a fake predictor.

The reply is written as the schema message (kept once per model), one record batch and the
end-of-stream marker. It must be byte for byte the stream pyarrow's own stream writer writes
for the same table (pyarrow's reader alone would forgive a missing end marker or trailing
bytes), read back as one batch holding what ``Prediction.columns`` holds, give the same bytes
with labels taken by index or as text, and leave out rows the model could not score with the
other rows' labels still in step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mlship.scoring.predictor import Predictor
from mlship.scoring.problems import InputError
from mlship.scoring.results import Prediction
from mlship.serving.codecs import arrow
from tests.scoring.fakes import fake_predictor


def columns(prices: list[float]) -> dict[str, np.ndarray]:
    n = len(prices)
    return {
        "price": np.array(prices, dtype=float),
        "discount": np.zeros(n),
        "store": np.array(["7", "1"] * (n // 2) + ["7"] * (n % 2), dtype=object),
        "promo": np.array([""] * n, dtype=object),
    }


def read_one_batch(body: bytes) -> pa.RecordBatch:
    """The stream's only batch (a second one fails)."""
    reader = pa.ipc.open_stream(body)
    batch = reader.read_next_batch()
    with pytest.raises(StopIteration):
        reader.read_next_batch()
    return batch


def as_lists(result: Prediction) -> dict[str, list[Any]]:
    return {k: list(np.asarray(v).tolist()) for k, v in result.columns().items()}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_reply_reads_back_as_one_batch_of_the_prediction(task: str) -> None:
    predictor = fake_predictor(task)
    result = predictor.predict(columns([-3.0, 0.2, 4.0, 1.5, -0.5]))
    batch = read_one_batch(arrow.encode(result, predictor))
    assert batch.to_pydict() == as_lists(result)
    kind = pa.string() if task == "classification" else pa.float64()
    assert batch.schema.field("prediction").type == kind
    identity = {k.decode(): v.decode() for k, v in (batch.schema.metadata or {}).items()}
    assert identity == {"model_name": "fake", "model_version": "3", "run_id": "r1"}
    again = read_one_batch(arrow.encode(result, predictor))  # the kept schema message
    assert again.equals(batch)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_reply_is_what_pyarrows_stream_writer_writes(task: str) -> None:
    predictor = fake_predictor(task)
    result = predictor.predict(columns([-3.0, 0.2, 4.0]))
    body = arrow.encode(result, predictor)
    table = pa.ipc.open_stream(body).read_all()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    assert body == sink.getvalue().to_pybytes()


def test_labels_by_index_and_as_text_give_the_same_reply() -> None:
    predictor = fake_predictor()
    result = predictor.predict(columns([-3.0, 0.2, 4.0, 1.5]))
    assert result.indices is not None
    assert [result.classes[i] for i in result.indices] == result.predictions
    text_only = Prediction(result.predictions, result.probabilities, result.classes)
    assert arrow.encode(text_only, predictor) == arrow.encode(result, predictor)


class NanForBigPrices:
    """NaN where the price is over 100 (a float32 twin's overflow), else the fake's output."""

    name = "nan"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def probabilities(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        proba: np.ndarray = self.inner.probabilities(cols)
        proba[cols["price"] > 100] = np.nan
        return proba

    def values(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = self.inner.values(cols)
        out[cols["price"] > 100] = np.nan
        return out


def test_rows_without_a_finite_score_are_named_and_the_rest_keep_their_labels() -> None:
    fake = fake_predictor()
    predictor = Predictor(NanForBigPrices(fake.backend), fake.columns, fake.info)
    prices = [-3.0, 500.0, 4.0, 700.0, -2.0]
    with pytest.raises(InputError, match="no finite score") as caught:
        predictor.predict(columns(prices))
    assert [p.row for p in caught.value.problems] == [1, 3]
    scored = predictor.score(predictor.validate(columns(prices)))
    assert scored.keep.tolist() == [0, 2, 4]
    result = scored.prediction
    assert result is not None and result.indices is not None
    assert result.predictions == ["no", "yes", "no"]
    assert [result.classes[i] for i in result.indices] == result.predictions
    assert read_one_batch(arrow.encode(result, predictor)).to_pydict() == as_lists(result)


def test_a_regressors_rows_without_a_finite_value_are_named_and_the_rest_scored() -> None:
    fake = fake_predictor("regression")
    predictor = Predictor(NanForBigPrices(fake.backend), fake.columns, fake.info)
    scored = predictor.score(predictor.validate(columns([1.0, 500.0, 3.0])))
    assert scored.keep.tolist() == [0, 2]
    assert [p.row for p in scored.problems] == [1]
    assert scored.prediction is not None and scored.prediction.predictions == [2.0, 6.0]
