"""The SageMaker SDK's own serializers and deserializers against a live server's
``/invocations``, the bytes posted with urllib (no AWS, no boto3 session).

SageMaker SDK v3 (``sagemaker`` 3.x, a meta-package with no modules of its own) keeps them in
``sagemaker-core``: ``sagemaker.core.serializers`` and ``sagemaker.core.deserializers``. This
does what ``sagemaker.core.resources.Endpoint.invoke`` does around ``invoke_endpoint``:
``serializer.serialize(data)`` is the body, ``serializer.CONTENT_TYPE`` the Content-Type, the
deserializer's ``ACCEPT`` the Accept header, and ``deserializer.deserialize(body, type)`` reads
the reply.

Run with the clients venv's python (not the project's): ``sagemaker_sdk.py BASE_URL
ROWS.json``. Every socket connection and name lookup that is not loopback is refused and
recorded (``network``): none may happen. The telemetry opt-out is the SDK's own knob
(``SageMaker.PythonSDK.Modules.TelemetryOptOut`` in the config file that
``SAGEMAKER_USER_CONFIG_OVERRIDE`` / ``SAGEMAKER_ADMIN_CONFIG_OVERRIDE`` name); the report says
what the SDK resolved it to. Prints one JSON object.
"""

from __future__ import annotations

import socket
from typing import Any

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
NETWORK: list[str] = []
_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: Any) -> None:
    host = address[0] if isinstance(address, tuple) else str(address)
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK:
        NETWORK.append(f"connect {address!r}")
        raise OSError(f"network call refused by the test: {address!r}")
    _connect(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name not in LOOPBACK:
        NETWORK.append(f"getaddrinfo {name!r}")
        raise OSError(f"name lookup refused by the test: {name!r}")
    return _getaddrinfo(host, *args, **kwargs)


# Before the SDK is imported: nothing it does at import time may reach the network either.
socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo

import json  # noqa: E402
import sys  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
from sagemaker.core.common_utils import resolve_value_from_config  # noqa: E402
from sagemaker.core.config.config import load_sagemaker_config  # noqa: E402
from sagemaker.core.config.config_schema import TELEMETRY_OPT_OUT_PATH  # noqa: E402
from sagemaker.core.deserializers import (  # noqa: E402
    CSVDeserializer,
    JSONDeserializer,
    JSONLinesDeserializer,
)
from sagemaker.core.serializers import (  # noqa: E402
    CSVSerializer,
    JSONLinesSerializer,
    JSONSerializer,
)

SAMPLE = 300  # characters of each body kept in the report, for the record


def _text(body: Any) -> str:
    return body.decode() if isinstance(body, bytes) else str(body)


def invoke(base: str, serializer: Any, deserializer: Any, data: Any) -> dict[str, Any]:
    """One call as the SDK makes it: serialize, POST /invocations, deserialize the reply."""
    body = serializer.serialize(data)
    request = urllib.request.Request(
        f"{base}/invocations",
        data=body.encode() if isinstance(body, str) else body,
        method="POST",
        headers={"Content-Type": serializer.CONTENT_TYPE, "Accept": ", ".join(deserializer.ACCEPT)},
    )
    sent = {
        "content_type": serializer.CONTENT_TYPE,
        "accept": ", ".join(deserializer.ACCEPT),
        "body_start": _text(body)[:SAMPLE],
    }
    try:
        response = urllib.request.urlopen(request, timeout=120)
    except urllib.error.HTTPError as exc:
        return {"sent": sent, "status": exc.code, "error": exc.read().decode()}
    status, content_type = response.status, response.headers.get("Content-Type", "")
    raw = response.read()
    response.close()
    replay = _Stream(raw)  # the deserializer reads (and closes) a stream, as botocore's body
    return {
        "sent": sent,
        "status": status,
        "content_type": content_type,
        "reply_start": raw.decode()[:SAMPLE],
        "deserialized": deserializer.deserialize(replay, content_type),
    }


class _Stream:
    """The reply body as the stream a deserializer expects (``read``, ``close``)."""

    def __init__(self, data: bytes) -> None:
        self._data, self.closed = data, False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data, self._data = self._data, b""
        else:
            data, self._data = self._data[:size], self._data[size:]
        return data

    def close(self) -> None:
        self.closed = True


def ping(base: str) -> int:
    with urllib.request.urlopen(f"{base}/ping", timeout=30) as response:
        return int(response.status)


def main() -> None:
    base, rows_path = sys.argv[1:3]
    rows: list[dict[str, Any]] = json.loads(Path(rows_path).read_text())
    with urllib.request.urlopen(f"{base}/metadata", timeout=30) as response:
        order: list[str] = json.loads(response.read())["column_order"]
    matrix = [[row[name] for name in order] for row in rows]  # signature order, no header
    frame = pd.DataFrame(matrix, columns=order)
    inputs: dict[str, tuple[Any, Any]] = {
        "csv_rows": (CSVSerializer(), matrix),  # a list of lists: one csv.writer row each
        "csv_frame": (CSVSerializer(), frame),  # a DataFrame: to_csv(header=False)
        "json": (JSONSerializer(), rows),
        "jsonlines": (JSONLinesSerializer(), rows),
    }
    outputs = {
        "csv": CSVDeserializer(),
        "json": JSONDeserializer(),
        "jsonlines": JSONLinesDeserializer(),
    }
    config = load_sagemaker_config()
    report: dict[str, Any] = {
        "ping": ping(base),
        "telemetry_opt_out": resolve_value_from_config(
            direct_input=None,
            config_path=TELEMETRY_OPT_OUT_PATH,
            default_value=False,
            sagemaker_config=config,
        ),
        "calls": {
            f"{name_in}->{name_out}": invoke(base, serializer, deserializer, data)
            for name_in, (serializer, data) in inputs.items()
            for name_out, deserializer in outputs.items()
        },
    }
    bad = [list(matrix[0]), list(matrix[1])]
    bad[1][order.index("PriceCH")] = "cheap"
    report["bad_value"] = invoke(base, CSVSerializer(), JSONDeserializer(), bad)
    report["network"] = NETWORK
    json.dump(report, sys.stdout, default=str)


if __name__ == "__main__":
    main()
