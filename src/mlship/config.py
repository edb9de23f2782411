"""Training configuration: one strict schema, YAML layers merged softly, dotted overrides.

Resolution order (later wins): the config file, the environment overlay
(``<env-dir>/<env>.yaml``), then ``key.sub=value`` overrides from the command line.
Merging is recursive, so an overlay that sets ``split.cv_folds`` keeps ``split.seed``.
Validation happens once, on the merged result, so an error names the final key.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlship.errors import ConfigError

DEFAULT_CONFIG = Path("configs/base.yaml")
DEFAULT_ENV_DIR = Path("configs/env")
DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"


class _Strict(BaseModel):
    """Frozen and closed: a typo in a key is an error, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Task(StrEnum):
    classification = "classification"
    regression = "regression"


class FeaturesConfig(_Strict):
    numeric: list[str] | None = Field(
        default=None,
        description="Numeric feature columns. Null: every column not listed elsewhere whose "
        "dtype is numeric.",
    )
    categorical: list[str] | None = Field(
        default=None,
        description="Categorical feature columns. Null: every non-numeric column not listed "
        "elsewhere. Listed numeric codes (store ids) are treated as categories.",
    )
    drop: list[str] = Field(
        default_factory=list, description="Columns to ignore (ids, leaks, duplicates)."
    )


class SampleConfig(_Strict):
    fraction: float | None = Field(
        default=None, gt=0, le=1, description="Keep this fraction of rows (seeded)."
    )
    rows: int | None = Field(default=None, gt=0, description="Keep at most this many rows.")
    seed: int = Field(default=42, description="Seed of the sample.")


class DataConfig(_Strict):
    uri: str = Field(
        description="Where the training table lives: a local path or any fsspec URI "
        "(s3://, gs://, abfs://, https://)."
    )
    format: Literal["auto", "csv", "parquet"] = Field(
        default="auto", description="File format; auto picks by extension."
    )
    target: str = Field(description="The column to predict.")
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    sample: SampleConfig | None = Field(
        default=None, description="Optional down-sampling before the split."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed to fsspec (e.g. endpoint_url for an S3-compatible store).",
    )


class SplitConfig(_Strict):
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Holdout fraction.")
    seed: int = Field(default=42, description="Seed of the split and of seeded estimators.")
    stratify: bool = Field(
        default=True, description="Stratify the split by class (classification only)."
    )
    cv_folds: int = Field(
        default=0, ge=0, description="k-fold cross-validation on the training part; 0 skips it."
    )

    @model_validator(mode="after")
    def _folds(self) -> SplitConfig:
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (off) or at least 2")
        return self


class DaskConfig(_Strict):
    address: str | None = Field(
        default=None,
        description="Scheduler of an existing Dask cluster (tcp://host:8786). Null: start a "
        "local cluster on this machine for the fit.",
    )
    workers: int = Field(default=2, ge=1, description="Workers of the local cluster.")
    threads_per_worker: int = Field(default=1, ge=1, description="Threads per local worker.")


class ModelConfig(_Strict):
    name: str = Field(
        default="logistic_regression",
        description="Estimator from the registry: logistic_regression, random_forest, "
        "hist_gradient_boosting, lightgbm, ridge.",
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Estimator keyword arguments per algorithm, e.g. params.lightgbm.num_leaves. "
        "Only the entry of model.name is used, so switching model.name keeps each "
        "algorithm's settings.",
    )

    engine: Literal["local", "dask"] = Field(
        default="local",
        description="Where the estimator is fitted: local (in this process) or dask (LightGBM "
        "across a Dask cluster; model.name must be lightgbm). The saved model is the same kind.",
    )
    dask: DaskConfig = Field(default_factory=DaskConfig, description="model.engine dask only.")

    @model_validator(mode="after")
    def _engine(self) -> ModelConfig:
        if self.engine == "dask" and self.name != "lightgbm":
            raise ValueError(
                f"model.engine dask trains lightgbm only (model.name is {self.name!r})"
            )
        return self

    def chosen_params(self) -> dict[str, Any]:
        """The keyword arguments of the selected algorithm."""
        return dict(self.params.get(self.name) or {})


class TrackingConfig(_Strict):
    uri: str | None = Field(
        default=None,
        description="MLflow tracking URI. Null: MLFLOW_TRACKING_URI if set, else an embedded "
        f"SQLite store ({DEFAULT_TRACKING_URI}).",
    )
    experiment: str = Field(description="MLflow experiment name.")
    run_name: str | None = Field(default=None, description="Run name; null lets MLflow pick one.")
    registered_model: str = Field(description="Registry name; each run adds a version.")
    alias: str = Field(default="candidate", description="Alias set on each new version.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra run tags.")


class OutputConfig(_Strict):
    model_dir: Path = Field(
        description="Where the saved MLflow model directory is written (atomically)."
    )


class Settings(_Strict):
    """The whole training job, as validated after all layers are merged."""

    task: Task = Field(default=Task.classification, description="classification or regression.")
    positive_class: str | None = Field(
        default=None,
        description="Binary classification: the label scored as positive (ROC/PR curves, "
        "precision, recall). Null: the last label in sorted order.",
    )
    data: DataConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    tracking: TrackingConfig
    output: OutputConfig


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``overlay`` into ``base`` recursively; mappings merge, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """Turn ``a.b.c=value`` into ``{"a": {"b": {"c": value}}}``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {key}: value {raw!r} is not valid YAML ({exc})") from None
    nested: dict[str, Any] = {}
    node = nested
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return nested


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML layer; an empty file is an empty layer."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping")
    return loaded


def resolve_raw(
    config: Path = DEFAULT_CONFIG,
    env: str | None = None,
    overrides: Iterable[str] = (),
    env_dir: Path = DEFAULT_ENV_DIR,
) -> dict[str, Any]:
    """Merge the layers into one plain mapping, before validation."""
    raw = read_yaml(config)
    if env:
        overlay = env_dir / f"{env}.yaml"
        if not overlay.is_file():
            known = sorted(p.stem for p in env_dir.glob("*.yaml")) if env_dir.is_dir() else []
            raise ConfigError(
                f"env {env!r}: no overlay {overlay} (known: {', '.join(known) or 'none'})"
            )
        raw = deep_merge(raw, read_yaml(overlay))
    for text in overrides:
        raw = deep_merge(raw, parse_override(text))
    return raw


def validate(raw: Mapping[str, Any]) -> Settings:
    """Validate a merged mapping; the first problem becomes a one-line error naming its key."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One readable line per problem: ``key.path: what is wrong``."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "<root>"
        kind = err["type"]
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "required value is missing"
        else:
            given = err.get("input")
            message = f"{err['msg']} (got {given!r})" if not isinstance(given, dict) else err["msg"]
        lines.append(f"config key {key}: {message}")
    return "; ".join(lines)


def load_settings(
    config: Path = DEFAULT_CONFIG,
    env: str | None = None,
    overrides: Iterable[str] = (),
    env_dir: Path = DEFAULT_ENV_DIR,
) -> Settings:
    """Resolve and validate the training settings."""
    return validate(resolve_raw(config, env, overrides, env_dir))


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, for logging resolved settings as MLflow params."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


SECRET_KEY = re.compile(r"key|secret|token|password|passwd|credential|sas|signature", re.I)
REDACTED = "***"


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: REDACTED if SECRET_KEY.search(str(k)) else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def public_dump(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with credentials in ``data.storage_options`` masked.

    This is what gets logged (MLflow params, the resolved config artifact) and copied into
    model dirs and images, so a secret given for reading the data never leaves the job.
    """
    dumped = settings.model_dump(mode="json")
    dumped["data"]["storage_options"] = _redact(dumped["data"]["storage_options"])
    return dumped


def settings_to_yaml(settings: Settings) -> str:
    """The resolved settings as YAML (credentials masked), the form stored beside each model."""
    return yaml.safe_dump(public_dump(settings), sort_keys=False)
