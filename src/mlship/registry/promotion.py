"""Promotion: move an alias to a version, optionally only when a holdout metric is better."""

from __future__ import annotations

from dataclasses import dataclass

from mlship.errors import TrackingError
from mlship.registry.models import resolve_version, run_metrics
from mlship.registry.tracking import client

# Metrics where smaller is better.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    reason: str
    version: str
    previous: str | None


def promote(uri: str, name: str, source: str, to: str, if_better: str | None = None) -> Promotion:
    """Point alias ``to`` at the version named by ``source`` (number or alias).

    With ``if_better``, only when the candidate's holdout metric beats the current holder's
    (lower is better for losses and errors), or nobody holds the alias yet.
    """
    from mlflow.exceptions import MlflowException

    mlflow_client = client(uri)
    candidate = resolve_version(mlflow_client, name, source)
    try:
        champion = mlflow_client.get_model_version_by_alias(name, to)
    except MlflowException:
        champion = None
    previous = str(champion.version) if champion is not None else None
    if previous == str(candidate.version):
        return Promotion(False, f"version {previous} already holds @{to}", previous, previous)
    if if_better and champion is not None:
        mine = run_metrics(mlflow_client, candidate.run_id)
        theirs = run_metrics(mlflow_client, champion.run_id)
        if if_better not in mine:
            known = ", ".join(sorted(k for k in mine if not k.startswith("cv_"))) or "none"
            raise TrackingError(
                f"metric {if_better!r}: version {candidate.version} has no such metric "
                f"(has: {known})"
            )
        if if_better not in theirs:
            reason = f"@{to} version {previous} has no {if_better}; promoting"
        else:
            lower = if_better in LOWER_IS_BETTER
            better = (
                mine[if_better] < theirs[if_better]
                if lower
                else mine[if_better] > theirs[if_better]
            )
            comparison = (
                f"{if_better} {mine[if_better]:.4f} (v{candidate.version}) vs "
                f"{theirs[if_better]:.4f} (v{previous}, @{to})"
            )
            if not better:
                return Promotion(
                    False, f"not better: {comparison}", str(candidate.version), previous
                )
            reason = f"better: {comparison}"
    elif champion is None:
        reason = f"no version held @{to} yet"
    else:
        reason = f"replacing version {previous} unconditionally"
    mlflow_client.set_registered_model_alias(name, to, candidate.version)
    return Promotion(True, reason, str(candidate.version), previous)
