"""Fuzz the scoring routes of a real `mlship serve` with schemathesis, body-aware and bounded.

The document is the service's own ``/openapi.json``: typed from the model's signature (every
request shape of ``/score`` a named schema, each column typed, numbers within float32 range),
with every status a route can answer and its schema. The only change made here pins the path
parameters (``{name}``, ``{version}``) to the served model, so cases reach the codecs.

Inputs: a few hand-made hostile bodies first (deep nesting, a boolean for a number, ...),
then Hypothesis-generated cases, valid (positive) and schema-violating (negative), seeded
and derandomized, for ``POST /score``, the Open Inference Protocol's infer and KServe v1's
predict. Checks: ``not_a_server_error`` and ``response_schema_conformance``. Every failing
input is collected (not just the first) and all of them are reported at the end.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_EXAMPLES = 300
TIME_BUDGET_S = 120
REQUEST_TIMEOUT_S = 10
CHECKS = [not_a_server_error, response_schema_conformance]
HOST = "127.0.0.1"
MLSHIP = Path(sys.executable).with_name("mlship")


# ---------------------------------------------------------------------------------------------
# the live server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_url(trained_oj: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlship serve` on the session's OJ model, one worker, on a free loopback port."""
    port = _free_port()
    log = tmp_path_factory.mktemp("fuzz-serve") / "serve.log"
    command = [
        str(MLSHIP) if MLSHIP.exists() else "mlship", "serve", "--model",
        str(trained_oj / "model"), "--host", HOST, "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"mlship serve exited: {log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not ready in 120 s: {log.read_text()[-3000:]}"
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# ---------------------------------------------------------------------------------------------
# the document: the live one, typed from the model's signature by the service itself


FUZZED = {  # operation -> examples per generation mode
    ("/score", "POST"): MAX_EXAMPLES,
    ("/v2/models/{name}/infer", "POST"): MAX_EXAMPLES // 6,
    ("/v1/models/{name}:predict", "POST"): MAX_EXAMPLES // 6,
}


def pinned(document: dict[str, Any], name: str, version: str) -> dict[str, Any]:
    """The live document with the path parameters pinned to the served model, so the fuzzed
    cases reach the codecs instead of a 404 for a made-up model name."""
    doc = copy.deepcopy(document)
    values = {"name": name, "version": version}
    for item in doc["paths"].values():
        for operation in item.values():
            for param in operation.get("parameters", []):
                if param["in"] == "path" and param["name"] in values:
                    param["schema"] = {"type": "string", "enum": [values[param["name"]]]}
    return doc


def test_the_live_document_types_the_score_body(live_url: str) -> None:
    """No body schema is made up here any more: the service documents its own."""
    document = httpx.get(f"{live_url}/openapi.json", timeout=10).json()
    post = document["paths"]["/score"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert {"200", "400", "413", "415", "422", "503"} <= set(post["responses"])
    record = document["components"]["schemas"]["Record"]
    signature = httpx.get(f"{live_url}/metadata", timeout=10).json()["signature"]
    assert record["required"] == [c["name"] for c in signature]
    doc = pinned(document, "oj-purchase", "1")
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]["parameters"][0]
    assert infer["schema"]["enum"] == ["oj-purchase"]
    assert (
        "enum"
        not in document["paths"]["/v2/models/{name}/infer"]["post"]["parameters"][0]["schema"]
    ), "the input is not changed"


JSON_TYPES = {"number": "number", "string": "string"}


# ---------------------------------------------------------------------------------------------
# hostile bodies sent first, as raw bytes (json.dumps cannot nest 1,000 levels itself)


def hostile_bodies(signature: list[dict[str, Any]]) -> dict[str, bytes]:
    row: dict[str, Any] = {
        c["name"]: 1.5 if JSON_TYPES.get(str(c["type"])) in {"number", "integer"} else "1"
        for c in signature
    }
    number = next(c["name"] for c in signature if row[c["name"]] == 1.5)
    extremes = {
        k: (3e38 if i % 2 else -3e38) if v == 1.5 else v for i, (k, v) in enumerate(row.items())
    }
    marker = "__fuzz_value__"
    template = json.dumps([{**row, number: marker}])

    def put(raw: str) -> bytes:
        return template.replace(json.dumps(marker), raw).encode()

    return {
        "number nested 1,000 lists deep": put("[" * 1000 + "1.5" + "]" * 1000),
        "number nested 1,000 objects deep": put('{"a":' * 1000 + "1.5" + "}" * 1000),
        "number nested 900 lists deep": put("[" * 900 + "1.5" + "]" * 900),
        "body nested 1,000 lists deep": b"[" * 1000 + json.dumps(row).encode() + b"]" * 1000,
        "boolean for a number": put("true"),
        "string '1_000' for a number": put('"1_000"'),
        "full-width digits for a number": put(json.dumps("\uff12\uff13\uff17")),
        "number literal 1e400": put("1e400"),
        "NaN literal": put("NaN"),
        "null for a number": put("null"),
        "object for a number": put('{"value": 1.5}'),
        # Opposite signs near float32's limit: a linear model's score becomes inf - inf.
        "alternating +-3e38 in every number": json.dumps([extremes]).encode(),
        "junk key next to instances": json.dumps({"instances": [row], "junk": 1}).encode(),
        "truncated JSON": put("1.5")[:-7],
        "lone surrogate escape": put('"\\ud800"'),
    }


# ---------------------------------------------------------------------------------------------
# the fuzz run


@dataclass
class Found:
    label: str
    status: int | str
    failure: str
    detail: str
    body: str
    reply: str
    count: int = 1


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _cut(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} chars)"


@dataclass
class Fuzzer:
    """Sends cases, runs the checks, and keeps every distinct failure instead of stopping."""

    found: dict[tuple[str, ...], Found] = field(default_factory=dict)
    hostile_status: dict[str, int | str] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)
    session: requests.Session = field(default_factory=requests.Session)

    def record(
        self, label: str, status: int | str, failure: str, detail: str, body: Any, reply: str
    ) -> None:
        """One entry per distinct failure (input label, status, check, message; for a 5xx
        also the reply); repeated fuzzed ones keep the shortest body."""
        key = (label, str(status), failure, detail[:80], reply[:80] if str(status) >= "5" else "")
        text = _text(body)
        entry = self.found.get(key)
        if entry is None:
            self.found[key] = Found(label, status, failure, detail, text, reply)
            return
        entry.count += 1
        if len(text) < len(entry.body):
            entry.body, entry.reply, entry.detail = text, reply, detail

    def send(self, case: schemathesis.Case, label: str) -> None:
        try:
            response = case.call(session=self.session, timeout=REQUEST_TIMEOUT_S)
        except requests.RequestException as exc:
            # The connection broke (e.g. the reply after a 5xx left it unusable): a failure
            # of its own; carry on with a fresh connection.
            self.record(label, "no reply", type(exc).__name__, str(exc)[:200], case.body, "")
            self.hostile_status.setdefault(label, "no reply")
            self.session = requests.Session()
            return
        self.hostile_status.setdefault(label, response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                detail = failure.message.strip().splitlines()[0] if failure.message else ""
                self.record(
                    label, response.status_code, failure.title, detail, case.body, response.text
                )

    def report(self, elapsed: float) -> str:
        for label in [k for k in self.hostile_status if k.startswith("fuzzed")]:
            del self.hostile_status[label]
        lines = ["hostile inputs -> status (a 200 here was accepted, not rejected):"]
        lines += [f"  {status}  {label}" for label, status in self.hostile_status.items()]
        counts = ", ".join(f"{k} {v}" for k, v in self.sent.items())
        lines.append(
            f"{len(self.found)} distinct failure(s) from {self.sent.total()} requests "
            f"({counts}) in {elapsed:.0f} s:"
        )
        for f in self.found.values():
            times = f" (x{f.count})" if f.count > 1 else ""
            detail = f": {_cut(f.detail, 200)}" if f.detail else ""
            lines.append(f"- [{f.label}] {f.status} {f.failure}{times}{detail}")
            lines.append(f"    body:  {_cut(f.body)}")
            if f.reply:
                lines.append(f"    reply: {_cut(f.reply, 300)}")
        return "\n".join(lines)


def fuzz_operation(fuzzer: Fuzzer, operation: Any, examples: int, label: str) -> None:
    """``examples`` Hypothesis cases, valid and schema-violating, sent and checked."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
    )
    def fuzz(case: schemathesis.Case) -> None:
        fuzzer.sent[case.meta.generation.mode.value if case.meta else "positive"] += 1
        fuzzer.send(case, label)

    fuzz()


def test_fuzz_score_has_no_server_errors_and_documented_replies(live_url: str) -> None:
    meta = httpx.get(f"{live_url}/metadata", timeout=10).json()
    document = httpx.get(f"{live_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(pinned(document, meta["name"], meta["version"]))
    schema.config.update(base_url=live_url, request_timeout=REQUEST_TIMEOUT_S)
    fuzzer = Fuzzer()

    start = time.monotonic()
    score = schema["/score"]["POST"]
    for label, body in hostile_bodies(meta["signature"]).items():
        fuzzer.sent["hostile"] += 1
        fuzzer.send(score.Case(body=body, media_type="application/json"), label)
    for (path, method), examples in FUZZED.items():
        fuzz_operation(fuzzer, schema[path][method], examples, f"fuzzed {method} {path}")

    elapsed = time.monotonic() - start
    report = fuzzer.report(elapsed)
    print(report)
    assert not fuzzer.found, report
    assert elapsed < TIME_BUDGET_S, f"fuzzing took {elapsed:.0f} s (budget {TIME_BUDGET_S} s)"
