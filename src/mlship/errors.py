"""Errors meant for people: each carries one line that names the key, column or row at fault.

The CLI prints ``str(error)`` without a traceback; the HTTP service turns ``InputError``
into a 4xx JSON body.
"""

from __future__ import annotations

from typing import Any


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


class InputError(MlshipError):
    """Scoring input does not match the model's signature.

    ``details`` lists one entry per problem (``{"row": 3, "column": "PriceCH", "error": ...}``)
    so the service can answer with every problem at once.
    """

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    @property
    def status(self) -> int:
        """HTTP status: 422 when rows or columns are named, 400 for a request-level problem."""
        return 422 if self.details else 400
