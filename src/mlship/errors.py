"""Errors meant for people: each carries one line that names the key, column or row at fault.

Library code raises these and never speaks of command-line flags; the CLI prints
``str(error)`` without a traceback, and the HTTP layer maps scoring errors to status codes in
one place (``mlship.serving.errors``).
"""

from __future__ import annotations


class MlshipError(Exception):
    """Base class of every error the CLI reports as a single line."""


class ConfigError(MlshipError):
    """A config key is unknown, missing, of the wrong type or inconsistent."""


class DataError(MlshipError):
    """Training or scoring data cannot be read or does not fit the configuration."""


class ModelError(MlshipError):
    """An estimator or its parameters are invalid, or a saved model cannot be used."""


class TrackingError(MlshipError):
    """The MLflow tracking store or registry refused an operation."""


class StorageError(MlshipError):
    """An output location cannot be written, or writing it would destroy something else."""
