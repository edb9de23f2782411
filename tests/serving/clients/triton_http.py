"""Triton's own HTTP client (``tritonclient[http]``) against a live server's /v2 routes.

Run with the clients venv's python (not the project's): ``triton_http.py HOST:PORT MODEL
VERSION ROWS.json``. Prints one JSON object: each call's reply, the per-column and the 2-D
inference results, and the errors for a wrong model name and version.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

NUMPY = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_}


def column(values: list[Any], datatype: str) -> np.ndarray:
    """A column as the tensor its metadata names: numbers, or an object array of str."""
    if datatype == "BYTES":
        out = np.empty(len(values), dtype=object)
        out[:] = [str(v) for v in values]
        return out
    return np.asarray(values, dtype=NUMPY[datatype])


def outputs(names: list[str]) -> list[httpclient.InferRequestedOutput]:
    return [httpclient.InferRequestedOutput(n, binary_data=False) for n in names]


def result(reply: httpclient.InferResult, names: list[str]) -> dict[str, Any]:
    response = reply.get_response()
    out: dict[str, Any] = {
        "id": response.get("id"),
        "model_name": response.get("model_name"),
        "model_version": response.get("model_version"),
        "outputs": [o["name"] for o in response["outputs"]],
    }
    for name in names:
        array = reply.as_numpy(name)
        if array.dtype == object:  # BYTES come back as bytes or str
            out[name] = [v.decode() if isinstance(v, bytes) else str(v) for v in array.tolist()]
        else:
            out[name] = array.tolist()
        got = reply.get_output(name)
        out[f"{name}.parameters"] = got.get("parameters") if got else None
    return out


def error(call: Any) -> dict[str, Any]:
    try:
        call()
    except InferenceServerException as exc:
        return {"status": exc.status(), "message": exc.message()}
    return {"status": None, "message": "no error"}


def main() -> None:
    url, model, version, rows_path = sys.argv[1:5]
    rows: list[dict[str, Any]] = json.loads(Path(rows_path).read_text())
    client = httpclient.InferenceServerClient(url=url, network_timeout=120.0)
    report: dict[str, Any] = {
        "is_server_live": client.is_server_live(),
        "is_server_ready": client.is_server_ready(),
        "is_model_ready": client.is_model_ready(model),
        "is_model_ready_versioned": client.is_model_ready(model, model_version=version),
        "is_model_ready_wrong_name": client.is_model_ready("no-such-model"),
        "is_model_ready_wrong_version": client.is_model_ready(model, model_version="999"),
        "server_metadata": client.get_server_metadata(),
    }
    meta = client.get_model_metadata(model, model_version=version)
    report["model_metadata"] = meta
    kinds = {i["name"]: i["datatype"] for i in meta["inputs"]}
    names = [o["name"] for o in meta["outputs"]]

    # One input per column, shape [n] (MLServer's pandas convention).
    inputs = []
    for name, datatype in kinds.items():
        tensor = httpclient.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(column([r[name] for r in rows], datatype), binary_data=False)
        inputs.append(tensor)
    reply = client.infer(model, inputs, outputs=outputs(names), request_id="triton-1")
    report["infer"] = result(reply, names)
    versioned = client.infer(
        model, inputs, model_version=version, outputs=outputs(names[:1]), request_id="triton-2"
    )
    report["infer_versioned_label_only"] = result(versioned, names[:1])

    # One 2-D tensor [n, k] in signature order (Triton FIL's convention); mixed column kinds
    # travel as BYTES, numbers as their decimal text.
    matrix = np.empty((len(rows), len(kinds)), dtype=object)
    matrix[:] = [[str(r[name]) for name in kinds] for r in rows]
    tensor = httpclient.InferInput("input__0", list(matrix.shape), "BYTES")
    tensor.set_data_from_numpy(matrix, binary_data=False)
    report["infer_matrix"] = result(client.infer(model, [tensor], outputs=outputs(names)), names)

    # The client's defaults ask for the binary tensor data extension, which the server does not
    # list: with no ``outputs`` it sets ``parameters.binary_data_output`` (the reply is JSON all
    # the same, and the client reads it); set_data_from_numpy's default binary_data=True sends
    # raw bytes after the JSON with Inference-Header-Content-Length (a 400 naming the fix).
    report["infer_no_outputs"] = result(client.infer(model, inputs), names)
    binary = []
    for name, datatype in kinds.items():
        tensor = httpclient.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(column([r[name] for r in rows], datatype))
        binary.append(tensor)
    report["infer_binary_inputs"] = error(lambda: client.infer(model, binary))

    report["metadata_wrong_name"] = error(lambda: client.get_model_metadata("no-such-model"))
    report["metadata_wrong_version"] = error(
        lambda: client.get_model_metadata(model, model_version="999")
    )
    report["infer_wrong_name"] = error(lambda: client.infer("no-such-model", inputs))
    report["infer_wrong_version"] = error(lambda: client.infer(model, inputs, model_version="999"))
    client.close()
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
