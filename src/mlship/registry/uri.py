"""``models:/name@alias`` and ``models:/name/N``: how every command names a registered model.

Kept apart from ``mlship.registry.models`` (which imports MLflow) so that telling a registry
URI from a model dir costs nothing.
"""

from __future__ import annotations

import re

REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


def registry_ref(source: str) -> tuple[str, str] | None:
    """``(name, alias or version)`` of a registry URI; None for anything else (a dir, a URL)."""
    match = REGISTRY_URI.match(source)
    return None if match is None else (match["name"], match["alias"] or match["version"])
