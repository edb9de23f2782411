"""Training configuration layers: YAML files merged softly, dotted overrides, then validation.

Resolution order (later wins): the config file, the environment overlay
(``<env-dir>/<env>.yaml``), then ``key.sub=value`` overrides from the command line.
Merging is recursive, so an overlay that sets ``split.cv_folds`` keeps ``split.seed``.
Validation happens once, on the merged result, so an error names the final key.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlship.config.schema import DEFAULT_CONFIG, DEFAULT_ENV_DIR, DEFAULT_TRACKING_URI, Settings
from mlship.errors import ConfigError


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


def describe_validation_error(exc: ValidationError, what: str = "config key") -> str:
    """One readable line per problem: ``config key path: what is wrong``."""
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
        lines.append(f"{what} {key}: {message}")
    return "; ".join(lines)


def load_settings(
    config: Path = DEFAULT_CONFIG,
    env: str | None = None,
    overrides: Iterable[str] = (),
    env_dir: Path = DEFAULT_ENV_DIR,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve and validate the training settings.

    A tracking URI left null comes from ``MLFLOW_TRACKING_URI`` (MLflow's own variable, read
    from ``environ``, default ``os.environ``), else the embedded SQLite store.
    """
    raw = resolve_raw(config, env, overrides, env_dir)
    tracking = raw.get("tracking")
    if isinstance(tracking, dict) and tracking.get("uri") is None:
        variables = os.environ if environ is None else environ
        uri = variables.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
        raw = deep_merge(raw, {"tracking": {"uri": uri}})
    return validate(raw)


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
