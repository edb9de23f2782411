"""The scoring images, built once per test session and shared by the e2e modules
(``test_docker.py``, ``test_image_clients.py``): image builds are the slow part."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.images import build_image, docker, require_docker


@pytest.fixture(scope="session")
def image(trained_oj: Path) -> Iterator[str]:
    """The scikit-learn runtime image (the Dockerfile's default)."""
    require_docker()
    tag = build_image(trained_oj / "model", "sklearn")
    yield tag
    docker("rmi", "-f", tag, check=False)


@pytest.fixture(scope="session")
def onnx_image(trained_oj: Path) -> Iterator[str]:
    """The ONNX runtime image: no scikit-learn, SciPy or pandas inside."""
    require_docker()
    tag = build_image(trained_oj / "model", "onnx")
    yield tag
    docker("rmi", "-f", tag, check=False)
