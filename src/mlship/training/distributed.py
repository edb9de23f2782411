"""``model.engine: dask``: fit LightGBM across a Dask cluster, and save the same kind of model.

Why this shape: as data grows, the single-process fit is the first step to run out of time.
LightGBM's own Dask integration spreads the boosting over workers (a ``LocalCluster`` started
for the fit, or any cluster by address), and ``to_local()`` turns the result into an ordinary
``LGBMClassifier``/``LGBMRegressor``. That goes back into the same scikit-learn Pipeline, so
the saved model dir, the predictor, the service and both batch engines do not change.

What it does not do: the training table is still read and the feature transformer still fitted
on the client. It spreads the fit, not the reading; ``data.sample`` bounds the client's share.

Dask is an optional dependency (``dask[distributed]``), imported only when this engine is used.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from mlship.config import DaskConfig
from mlship.errors import ModelError


def _dask() -> tuple[Any, Any, Any, Any, Any]:
    try:
        import dask.array as da
        from dask.distributed import Client, LocalCluster
        from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor
    except ImportError as exc:
        raise ModelError(
            f"model.engine dask needs dask and distributed (pip install 'dask[distributed]'): {exc}"
        ) from None
    return da, Client, LocalCluster, DaskLGBMClassifier, DaskLGBMRegressor


def _check_classes(labels: np.ndarray, chunk: int) -> None:
    """Every chunk must hold every class: each worker encodes the labels it sees, and the
    encodings agree only when every worker sees the same set."""
    classes = set(labels.tolist())
    for start in range(0, len(labels), chunk):
        seen = set(labels[start : start + chunk].tolist())
        if seen != classes:
            missing = sorted(map(str, classes - seen))
            raise ModelError(
                f"model.engine dask: class(es) {missing} too rare to reach every worker "
                f"({len(labels)} rows in chunks of {chunk}); use fewer model.dask.workers"
            )


def fit_on_dask(pipeline: Any, x: Any, y: Any, config: DaskConfig) -> None:
    """Fit ``pipeline`` (preprocess + LightGBM) with the LightGBM step trained on Dask."""
    da, client_cls, cluster_cls, classifier_cls, regressor_cls = _dask()
    preprocess = pipeline.named_steps["preprocess"]
    estimator = pipeline.named_steps["model"]
    is_classifier = type(estimator).__name__ == "LGBMClassifier"
    features = np.asarray(preprocess.fit_transform(x), dtype=np.float64)
    labels = np.asarray(y, dtype=object if is_classifier else np.float64)
    cluster: Any = contextlib.nullcontext()
    if config.address is None:
        cluster = cluster_cls(
            n_workers=config.workers,
            threads_per_worker=config.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    try:
        with cluster, client_cls(config.address or cluster) as client:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            chunk = max(1, math.ceil(len(features) / workers))
            if is_classifier:
                _check_classes(labels, chunk)
            data = da.from_array(features, chunks=(chunk, features.shape[1]))
            target = da.from_array(labels, chunks=chunk)
            params = estimator.get_params()
            model = (classifier_cls if is_classifier else regressor_cls)(client=client, **params)
            model.fit(data, target)
            fitted = model.to_local()
    except (OSError, TimeoutError) as exc:
        where = config.address or "a local cluster"
        raise ModelError(f"model.engine dask: cannot use {where}: {exc}") from None
    pipeline.steps[-1] = ("model", fitted)
