"""Request bodies: read within the size limit, and gzip-decoded within it too.

``max_body_bytes`` bounds both what is read off the wire and what a ``Content-Encoding: gzip``
body inflates to, so a small compressed body cannot expand past the limit (a "zip bomb" is
a 413 after at most ``limit + 1`` bytes of output). Other encodings are a 415.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from mlship.scoring.problems import Code, InputError

GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip framing only
IDENTITY = ("", "identity")
GZIP = ("gzip", "x-gzip")
ACCEPT_ENCODING = "gzip, identity"


async def read_limited(stream: AsyncIterator[bytes], limit: int) -> bytes | None:
    """The body, or None as soon as it grows past ``limit`` (chunked bodies have no length)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def encoding_of(header: str | None) -> str:
    """The one content coding of a request: ``""`` (none), ``"gzip"``; else a 415."""
    coding = (header or "").strip().lower()
    if coding in IDENTITY:
        return ""
    if coding in GZIP:
        return "gzip"
    raise InputError.single(
        Code.unsupported_media_type,
        f"unsupported Content-Encoding {coding[:40]!r}; send gzip or no encoding",
    )


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body (every member), refusing output beyond ``limit`` bytes."""
    out = bytearray()
    data = body
    while True:
        inflater = zlib.decompressobj(GZIP_WBITS)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise InputError.single(Code.malformed, f"malformed gzip body: {exc}") from None
        if len(out) > limit:
            raise InputError.single(
                Code.too_large, f"gzip body inflates past {limit:,} bytes (max_body_bytes)"
            )
        if not inflater.eof:
            raise InputError.single(Code.malformed, "malformed gzip body: truncated")
        data = inflater.unused_data
        if not data.strip(b"\0"):  # trailing NUL padding is allowed by gzip tools
            return bytes(out)
