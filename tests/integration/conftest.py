"""Session-wide real services for integration tests: one MLflow server, one SeaweedFS S3.

Each starts lazily (only when a test asks for it) and is stopped at the end of the session.
Every test in this folder is marked ``integration`` (deselect with ``-m "not integration"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import S3Service, mlflow_server, seaweedfs_s3

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def mlflow_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a real ``mlflow server`` (SQLite + proxied artifacts)."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Service]:
    """A real SeaweedFS S3 endpoint with helpers to create buckets and upload files."""
    with seaweedfs_s3(tmp_path_factory.mktemp("seaweedfs")) as service:
        yield service


@pytest.fixture(scope="session")
def s3_endpoint(s3_service: S3Service) -> str:
    """``http://127.0.0.1:<port>`` of the S3 endpoint (any key/secret is accepted)."""
    return s3_service.endpoint
