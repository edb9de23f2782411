"""How the service runs: one settings object read by ``mlship serve``, its workers and probes.

Precedence, highest first: a command-line flag (``mlship serve --port``), then an ``MLSHIP_*``
variable (``MLSHIP_PORT``, ``MLSHIP_RUNTIME``, ...), then the platform's own variables, then
the default. The platform decides the port when nothing of ours does:

- SageMaker (the container argument ``serve``): ``SAGEMAKER_BIND_TO_PORT``, else 8080;
- Vertex AI: ``AIP_HTTP_PORT``, with ``AIP_PREDICT_ROUTE`` and ``AIP_HEALTH_ROUTE``;
- Cloud Run, KServe: ``PORT``;
- otherwise 8888.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 8888
SAGEMAKER_PORT = 8080
ENV_PREFIX = "MLSHIP_"


class ServeSettings(BaseSettings):
    """Every knob of the scoring service, validated once."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", populate_by_name=True
    )

    model_dir: Path = Field(description="The saved model dir to serve.")
    host: str = Field(
        default="127.0.0.1",
        description="Interface to bind: loopback only unless told (the image passes 0.0.0.0).",
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Port; beats every platform variable."
    )
    workers: int = Field(default=1, ge=1, description="Worker processes.")
    threads: int = Field(default=1, ge=1, description="BLAS/OpenMP/onnxruntime threads each.")
    runtime: Literal["auto", "onnx", "sklearn"] = Field(
        default="auto", description="auto: ONNX when its parity check passed, else sklearn."
    )
    compiled_trees: bool = Field(
        default=True,
        description="With onnx: a tree model's compiled trees where built for this machine.",
    )
    max_rows: int = Field(default=10_000, ge=1, description="Most rows in one request.")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="Largest body.")
    extra_columns: Literal["reject", "ignore"] = Field(
        default="reject", description="Unknown columns: reject (422) or ignore (counted)."
    )
    access_log: bool = Field(default=False, description="Log every request.")
    api_keys_file: Path | None = Field(
        default=None,
        description="File of API keys (one a line, or sha256:<hex>); unset: no authentication.",
    )
    model_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="Refuse the model unless its manifest's SHA-256 is this (the registry's "
        "model.manifest_sha256 tag): proves the dir is the one training exported.",
    )
    docs: bool = Field(
        default=False, description="Serve /docs and /redoc (Swagger UI loads from a CDN)."
    )
    otel: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry (spans and metrics to the globally "
        "configured providers); off, it costs each request nothing.",
    )
    grace_seconds: int = Field(
        default=20, ge=0, le=3600, description="After SIGTERM: most seconds to finish requests."
    )
    sagemaker: bool = Field(default=False, description="Answer SageMaker's contract.")
    log_requests: str | None = Field(
        default=None,
        min_length=1,
        description="Log scored requests as Parquet files to this folder or fsspec URI.",
    )
    log_sample_rate: float = Field(
        default=1.0, ge=0, le=1, description="Share of requests logged (by request id)."
    )
    log_queue_rows: int = Field(
        default=10_000, ge=1, description="Most rows waiting to be written; beyond: dropped."
    )
    log_rotate_rows: int = Field(default=10_000, ge=1, description="Rows per request log file.")
    log_rotate_seconds: float = Field(
        default=60, gt=0, description="Most seconds a logged row waits for its file."
    )
    drift: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Live drift gauges in /metrics: auto (when the model dir has a reference "
        "profile), on (refuse to start without one), off.",
    )
    drift_window: int = Field(
        default=1000, ge=10, le=10_000_000, description="Recent rows the drift gauges cover."
    )
    drift_shared_dir: str | None = Field(
        default=None, description="Set by mlship serve for --workers N: the workers' drift files."
    )
    # The platforms' own variables (no prefix).
    platform_port: int | None = Field(
        default=None, validation_alias=AliasChoices("AIP_HTTP_PORT", "PORT"), exclude=True
    )
    sagemaker_port: int | None = Field(
        default=None, validation_alias="SAGEMAKER_BIND_TO_PORT", exclude=True
    )
    aip_http_port: int | None = Field(default=None, validation_alias="AIP_HTTP_PORT", exclude=True)
    aip_predict_route: str | None = Field(
        default=None, validation_alias="AIP_PREDICT_ROUTE", exclude=True
    )
    aip_health_route: str | None = Field(
        default=None, validation_alias="AIP_HEALTH_ROUTE", exclude=True
    )

    @property
    def listen_port(self) -> int:
        if self.port is not None:
            return self.port
        if self.sagemaker:
            return self.sagemaker_port or SAGEMAKER_PORT
        return self.platform_port or DEFAULT_PORT

    @property
    def vertex_predict_route(self) -> str | None:
        """Vertex's predict route, when the container runs on Vertex AI."""
        if self.sagemaker or self.aip_http_port is None:
            return None
        return self.aip_predict_route or "/predict"

    @property
    def health_route(self) -> str:
        if self.vertex_predict_route is None:
            return "/health"
        return self.aip_health_route or "/health"

    def to_env(self) -> dict[str, str]:
        """Our fields as ``MLSHIP_*`` variables, so worker processes read the same settings."""
        dumped = self.model_dump(mode="json", exclude_none=True)
        return {f"{ENV_PREFIX}{key.upper()}": str(value) for key, value in dumped.items()}
