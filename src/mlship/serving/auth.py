"""Optional API-key authentication: keys from a file, kept only as SHA-256 digests.

The file holds one key a line, either the key itself or ``sha256:<64 hex digits>`` (the
digest of the key, so the file need not hold the secret); blank lines and ``#`` comments are
skipped. A caller sends ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. The presented
key is hashed and compared with every stored digest by ``hmac.compare_digest`` (constant time,
and no early exit on a match), so neither the timing nor a log line says anything about a key.
Probe routes stay open: liveness and readiness checkers carry no credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlship.errors import MlshipError
from mlship.serving.errors import error_response
from mlship.serving.metrics import Receive, Scope, Send

if TYPE_CHECKING:
    from mlship.serving.settings import ServeSettings

HASHED = re.compile(r"sha256:([0-9a-fA-F]{64})")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiKeys:
    """The accepted keys, as digests only (nothing here can print a key)."""

    def __init__(self, digests: Iterable[bytes]) -> None:
        self._digests = tuple(digests)

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._digests)} key(s))"

    def __len__(self) -> int:
        return len(self._digests)

    @classmethod
    def from_lines(cls, lines: Iterable[str], source: str = "API key file") -> ApiKeys:
        digests: list[bytes] = []
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.lower().startswith("sha256:"):
                hashed = HASHED.fullmatch(line)
                if hashed is None:  # the line is not quoted: it may be a key with a typo
                    raise MlshipError(f"{source} line {number}: sha256: needs 64 hex digits")
                digests.append(bytes.fromhex(hashed.group(1)))
            else:
                digests.append(digest(line))
        if not digests:
            raise MlshipError(f"{source}: no keys (one a line, or sha256:<hex>)")
        return cls(digests)

    @classmethod
    def from_file(cls, path: Path) -> ApiKeys:
        """The keys of ``path``; errors name the file by its name only."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
            raise MlshipError(f"API key file {path.name!r}: {reason}") from None
        return cls.from_lines(text.splitlines(), f"API key file {path.name!r}")

    def accepts(self, key: str) -> bool:
        presented = digest(key)
        found = False
        for stored in self._digests:  # no early exit: the time does not depend on which key
            found |= hmac.compare_digest(presented, stored)
        return found


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key in ``X-API-Key``, else in ``Authorization: Bearer ...``, if any.

    ``X-API-Key`` wins wherever it stands: on Cloud Run ``Authorization`` carries the caller's
    Google ID token, and the key travels beside it. Header bytes are read as UTF-8, as the
    key file is.
    """
    bearer = None
    for name, value in headers:
        text = value.decode("utf-8", "replace").strip()
        if name == b"x-api-key":
            return text
        if name == b"authorization" and bearer is None:
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
    return bearer


class RequireApiKey:
    """Pure ASGI middleware: 401 without a key, 403 with a wrong one; ``open_paths`` pass."""

    def __init__(self, app: Any, keys: ApiKeys, open_paths: set[str]) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        key = presented_key(scope["headers"])
        if key is None:
            reply = error_response(401, "authentication required: send Authorization: Bearer <key>")
            reply.headers["WWW-Authenticate"] = "Bearer"
        elif not self.keys.accepts(key):
            reply = error_response(403, "API key not accepted")
        else:
            await self.app(scope, receive, send)
            return
        await reply(scope, receive, send)


# Liveness and readiness probes of the protocols, open even with API keys.
OPEN_PROBES = ("/", "/v2/health/live", "/v2/health/ready")


def open_paths(settings: ServeSettings) -> set[str]:
    """The probes that stay open with API keys: their checkers carry no credentials."""
    probes = {"/health", "/ready", settings.health_route, *OPEN_PROBES}
    if settings.sagemaker:
        probes.add("/ping")
    return probes
