"""Smoke-test a deployed scorer: ready, metadata, and a scored sample. Standard library only.

    python3 deploy/ci/smoke_test.py URL [--expect-model NAME] [--sample FILE]

Sends the bearer token in $SMOKE_TOKEN if set (Cloud Run with IAM). Exits non-zero, naming
the failed check, if the service is not ready, names another model, or scores badly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).with_name("smoke_sample.json")


def call(url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    token = os.environ.get("SMOKE_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_ready(base: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, last = call(base + "/ready", timeout=5)
            if status == 200:
                return
        except OSError as exc:
            last = exc
        time.sleep(2)
    raise SystemExit(f"smoke: {base}/ready did not answer 200 within {timeout:.0f}s: {last}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="Base URL of the scorer, e.g. https://...run.app")
    parser.add_argument("--expect-model", help="Registered model name the service must report")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="JSON array of records")
    parser.add_argument("--timeout", type=float, default=120, help="Seconds to wait for /ready")
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")

    wait_ready(base, args.timeout)
    status, meta = call(base + "/metadata")
    if status != 200:
        raise SystemExit(f"smoke: GET /metadata answered {status}: {meta}")
    name = meta.get("name") if isinstance(meta, dict) else None
    if args.expect_model and name != args.expect_model:
        raise SystemExit(f"smoke: the service serves {name!r}, expected {args.expect_model!r}")

    records = json.loads(args.sample.read_text())
    status, body = call(base + "/score", records)
    if status != 200:
        raise SystemExit(f"smoke: POST /score answered {status}: {body}")
    predictions = body.get("predictions") if isinstance(body, dict) else None
    if not isinstance(predictions, list) or len(predictions) != len(records):
        raise SystemExit(f"smoke: expected {len(records)} predictions, got {body}")
    status, _ = call(base + "/score", [{"not-a-feature": 1}])
    if status != 422:
        raise SystemExit(f"smoke: a bad record should get 422, got {status}")
    model = body.get("model", {})
    print(f"smoke ok: {model.get('name')} v{model.get('version')} scored {len(records)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
