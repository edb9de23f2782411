"""The Open Inference Protocol (KServe v2, Triton, MLServer), REST with JSON tensors.

Two tabular conventions are accepted on ``/v2/models/{name}/infer``:

- one input per column (MLServer's ``pd`` content type): ``{"name": "PriceCH", "shape": [n],
  "datatype": "FP64", "data": [...]}`` for every model column;
- one 2-D tensor ``[n, k]`` in signature order (Triton FIL's convention), any name.

The reply has ``label`` (``BYTES`` for classifiers, ``FP64`` values for regressors) and, for
classifiers, ``probabilities`` (``FP64``, ``[n, n_classes]``, the class names in the output's
``parameters.classes``). A request's ``outputs`` list picks among them; its ``id`` is echoed.
Errors are ``{"error": "..."}``.

Tensors travel as JSON ``data`` only: the binary tensor data extension (a body of JSON plus raw
bytes, announced by ``Inference-Header-Content-Length``) is not among the server's extensions,
and such a request is a 400 saying so. Asked for binary outputs (Triton's ``binary_data``
parameters), the reply still carries JSON ``data``, which the clients read as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlship import __version__
from mlship.scoring.columns import Columns
from mlship.scoring.predictor import ExtraColumns, Predictor
from mlship.scoring.problems import Code, InputError
from mlship.scoring.results import Prediction
from mlship.serving.codecs import cells, tabular

DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
     "FP16", "FP32", "FP64", "BYTES"}
)  # fmt: skip
LABEL, PROBABILITIES = "label", "probabilities"
BINARY_HEADER = "inference-header-content-length"


@dataclass(frozen=True)
class InferRequest:
    """What the reply must echo or honour."""

    id: str | None
    outputs: list[str] | None


def server_metadata() -> dict[str, Any]:
    return {"name": "mlship", "version": __version__, "extensions": []}


def output_names(predictor: Predictor) -> list[str]:
    return [LABEL, PROBABILITIES] if predictor.is_classifier else [LABEL]


def model_metadata(predictor: Predictor) -> dict[str, Any]:
    """One input per feature (``FP64`` or ``BYTES``, shape ``[-1]``) and the outputs."""
    info = predictor.info
    inputs: list[dict[str, Any]] = [
        {"name": c.name, "datatype": "FP64" if c.kind == "numeric" else "BYTES", "shape": [-1]}
        for c in predictor.columns
    ]
    label_type = "BYTES" if predictor.is_classifier else "FP64"
    outputs: list[dict[str, Any]] = [{"name": LABEL, "datatype": label_type, "shape": [-1]}]
    if predictor.is_classifier:
        outputs.append(
            {
                "name": PROBABILITIES,
                "datatype": "FP64",
                "shape": [-1, len(info.classes)],
                "parameters": {"classes": info.classes},
            }
        )
    return {
        "name": info.name,
        "versions": [info.version] if info.version else [],
        "platform": f"mlship-{predictor.runtime}",
        "inputs": inputs,
        "outputs": outputs,
    }


def binary_unsupported() -> InputError:
    """A request that uses the binary tensor data extension (``BINARY_HEADER`` is set)."""
    return tabular.malformed(
        "binary tensor data (Inference-Header-Content-Length) is not supported: send each "
        "tensor's values as JSON 'data' (tritonclient: set_data_from_numpy(..., "
        "binary_data=False))"
    )


def decode(
    body: bytes,
    content_type: str | None,
    predictor: Predictor,
    extra: ExtraColumns,
    on_ignored: tabular.OnIgnored = None,
) -> tuple[Columns, InferRequest]:
    """An inference request as raw columns, plus what the reply must echo."""
    if not tabular.is_json(tabular.media_type(content_type)):
        raise InputError.single(
            Code.unsupported_media_type, "the inference protocol takes application/json"
        )
    request = tabular.load_json(body)
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise tabular.malformed("an inference request needs 'inputs' (an array of tensors)")
    inputs = [_tensor(t, i) for i, t in enumerate(request["inputs"])]
    if not inputs:
        raise tabular.no_rows()
    wanted = _wanted_outputs(request.get("outputs"), predictor)
    ident = request.get("id")
    if ident is not None and not isinstance(ident, str):
        raise tabular.malformed("'id' must be a string")
    if len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].shape[1] > 1:
        columns = _matrix(inputs[0], predictor)
    else:
        columns = _per_column(inputs, predictor, extra, on_ignored)
    return columns, InferRequest(ident, wanted)


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


def _tensor(raw: Any, position: int) -> _Tensor:
    if not isinstance(raw, dict):
        raise tabular.malformed(f"inputs[{position}] must be an object")
    name, shape, datatype = raw.get("name"), raw.get("shape"), raw.get("datatype")
    if not isinstance(name, str):
        raise tabular.malformed(f"inputs[{position}]: 'name' must be a string")
    if not (isinstance(shape, list) and shape and all(_count(n) for n in shape)):
        raise tabular.malformed(f"input {name!r}: 'shape' must be a list of sizes")
    if datatype not in DATATYPES:
        raise tabular.malformed(f"input {name!r}: unknown datatype {datatype!r}")
    data = _flatten(raw.get("data"), name)
    if len(data) != math.prod(shape):
        raise tabular.malformed(
            f"input {name!r}: shape {shape} holds {math.prod(shape)} values, data has {len(data)}"
        )
    return _Tensor(name, shape, datatype, data)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _flatten(data: Any, name: str) -> list[Any]:
    """Row-major data, given flat or nested to any depth the shape allows (iteratively)."""
    if not isinstance(data, list):
        raise tabular.malformed(f"input {name!r}: 'data' must be an array")
    if list not in set(map(type, data)):  # flat, the common case: one pass at C speed
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                if len(stack) > 8:
                    raise tabular.malformed(f"input {name!r}: 'data' nested too deep")
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _per_column(
    inputs: list[_Tensor],
    predictor: Predictor,
    extra: ExtraColumns,
    on_ignored: tabular.OnIgnored,
) -> Columns:
    rows = {t.shape[0] for t in inputs}
    if len(rows) != 1 or any(math.prod(t.shape[1:]) != 1 for t in inputs):
        raise tabular.malformed("per-column inputs must all have shape [n] (or [n, 1]), same n")
    names = [t.name for t in inputs]
    values = cells.column_arrays(names, [t.data for t in inputs], tabular.numeric_names(predictor))
    return predictor.select(names, values, extra, on_ignored)


def _matrix(tensor: _Tensor, predictor: Predictor) -> Columns:
    width = tensor.shape[1]
    names = predictor.column_names
    if width != len(names):
        raise tabular.malformed(
            f"input {tensor.name!r}: a [n, k] tensor needs k = {len(names)} columns in "
            f"signature order ({', '.join(names)}), got {width}"
        )
    data = tensor.data
    by_column = [data[j::width] for j in range(width)]  # row-major: column j every width cells
    return cells.column_arrays(names, by_column, tabular.numeric_names(predictor))


def _wanted_outputs(raw: Any, predictor: Predictor) -> list[str] | None:
    if raw is None:
        return None
    known = output_names(predictor)
    if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
        raise tabular.malformed("'outputs' must be an array of objects with a 'name'")
    names = [o.get("name") for o in raw]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise tabular.malformed(f"unknown output {unknown[0]!r} (outputs: {', '.join(known)})")
    return [str(n) for n in names]


def encode(result: Prediction, predictor: Predictor, request: InferRequest) -> dict[str, Any]:
    info = predictor.info
    rows = len(result.predictions)
    outputs: dict[str, dict[str, Any]] = {
        LABEL: {
            "name": LABEL,
            "shape": [rows],
            "datatype": "BYTES" if predictor.is_classifier else "FP64",
            "data": result.predictions,
        }
    }
    if result.probabilities is not None:
        outputs[PROBABILITIES] = {
            "name": PROBABILITIES,
            "shape": [rows, len(result.classes)],
            "datatype": "FP64",
            "parameters": {"classes": result.classes},
            "data": result.probabilities.ravel().tolist(),
        }
    chosen = request.outputs or list(outputs)
    reply: dict[str, Any] = {
        "model_name": info.name,
        "model_version": info.version,
        "outputs": [outputs[name] for name in chosen],
    }
    if request.id is not None:
        reply["id"] = request.id
    return reply


def error(exc: InputError) -> dict[str, Any]:
    return {"error": exc.message}
