"""``python -m mlship.healthcheck``: the image's HEALTHCHECK, on whichever port is in use.

Exit 0 when the service answers its liveness route, 1 otherwise. Uses only the standard
library so it costs a few milliseconds, and the same port rules as ``mlship serve``.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    platform_port = os.environ.get("AIP_HTTP_PORT") or os.environ.get("PORT") or "8888"
    # 8080 covers SageMaker's contract, chosen by an argument this process cannot see.
    for port in dict.fromkeys([platform_port, "8080"]):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return 0
        except OSError:
            continue
    return 1


if __name__ == "__main__":
    sys.exit(main())
