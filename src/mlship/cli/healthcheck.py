"""``python -m mlship.cli.healthcheck``: the image's HEALTHCHECK, on whichever port is in use.

Exit 0 when the service answers its liveness route (open even with API keys), 1 otherwise.
The port is worked out by the same rules as ``mlship serve``, from the serving process's own
command line (PID 1 in the container) and this environment, so ``docker run IMAGE --port 9000``
is checked on 9000.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from mlship.errors import MlshipError


def serve_argv(cmdline: bytes) -> list[str] | None:
    """The arguments after ``serve`` in a NUL-separated command line, if it is ``mlship serve``."""
    parts = [p.decode("utf-8", "replace") for p in cmdline.split(b"\0") if p]
    for i, part in enumerate(parts[:3]):
        if Path(part).name == "mlship" and i + 1 < len(parts) and parts[i + 1] == "serve":
            return parts[i + 2 :]
    return None


def probe_host(bound: str) -> str:
    """Where to reach a server bound to ``bound``: loopback for the wildcards, else itself."""
    if bound in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bound == "::":
        return "[::1]"
    return f"[{bound}]" if ":" in bound else bound


def main(proc: Path = Path("/proc/1/cmdline")) -> int:
    from mlship.cli.serve import settings_from_argv

    try:
        argv = serve_argv(proc.read_bytes()) if proc.is_file() else None
        settings = settings_from_argv(argv if argv is not None else [])
    except (OSError, MlshipError):
        return 1
    url = f"http://{probe_host(settings.host)}:{settings.listen_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return 0 if reply.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
