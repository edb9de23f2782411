"""KServe's own REST client (``kserve.InferenceRESTClient``, async, httpx) against a live
server, with ``RESTConfig(protocol="v1")`` and ``protocol="v2"``.

Run with the clients venv's python (not the project's): ``kserve_rest.py BASE_URL MODEL
ROWS.json``. Prints one JSON object: each call's reply per protocol, and the errors for a
wrong model name.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput

WRONG = "no-such-model"
NUMPY = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_}


async def error(call: Awaitable[Any]) -> dict[str, Any]:
    try:
        await call
    except httpx.HTTPStatusError as exc:
        return {"status": exc.response.status_code, "message": str(exc)}
    return {"status": None, "message": "no error"}


async def v1(base: str, model: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    async with InferenceRESTClient(RESTConfig(protocol="v1", timeout=120)) as client:
        reply = await client.infer(base, {"instances": rows}, model_name=model)
        return {
            "is_server_live": await client.is_server_live(base),
            "is_model_ready": await client.is_model_ready(base, model),
            "infer": reply,
            "is_model_ready_wrong_name": await error(client.is_model_ready(base, WRONG)),
            "infer_wrong_name": await error(
                client.infer(base, {"instances": rows}, model_name=WRONG)
            ),
        }


def column(values: list[Any], datatype: str) -> np.ndarray:
    if datatype == "BYTES":
        out = np.empty(len(values), dtype=object)
        out[:] = [str(v) for v in values]
        return out
    return np.asarray(values, dtype=NUMPY[datatype])


async def v2(base: str, model: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    async with InferenceRESTClient(RESTConfig(protocol="v2", timeout=120)) as client:
        meta = httpx.get(f"{base}/v2/models/{model}", timeout=30).json()  # the client has no call
        inputs = []
        for spec in meta["inputs"]:
            name, datatype = spec["name"], spec["datatype"]
            tensor = InferInput(name, [len(rows)], datatype)
            tensor.set_data_from_numpy(column([r[name] for r in rows], datatype), False)
            inputs.append(tensor)
        names = [o["name"] for o in meta["outputs"]]
        request = InferRequest(
            model_name=model,
            infer_inputs=inputs,
            request_id="kserve-1",
            request_outputs=[RequestedOutput(n) for n in names],
        )
        response = await client.infer(base, request, model_name=model)
        outputs: dict[str, Any] = {"id": response.id, "model_name": response.model_name}
        for output in response.outputs:
            array = output.as_numpy()
            values = array.tolist()
            if array.dtype == object:
                values = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
            outputs[output.name] = values
            outputs[f"{output.name}.shape"] = list(output.shape)
            outputs[f"{output.name}.parameters"] = output.parameters
        return {
            "is_server_live": await client.is_server_live(base),
            "is_server_ready": await client.is_server_ready(base),
            "is_model_ready": await client.is_model_ready(base, model),
            "is_model_ready_wrong_name": await client.is_model_ready(base, WRONG),
            "infer": outputs,
            "infer_wrong_name": await error(client.infer(base, request, model_name=WRONG)),
        }


async def main() -> None:
    base, model, rows_path = sys.argv[1:4]
    rows: list[dict[str, Any]] = json.loads(Path(rows_path).read_text())
    report = {"v1": await v1(base, model, rows), "v2": await v2(base, model, rows)}
    json.dump(report, sys.stdout, default=str)


if __name__ == "__main__":
    asyncio.run(main())
