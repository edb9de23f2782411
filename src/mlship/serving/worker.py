"""The uvicorn factory each worker process calls: settings from the environment, threads capped.

``mlship serve`` exports its resolved ``ServeSettings`` as ``MLSHIP_*`` variables before
starting uvicorn, so every worker builds the very same settings object. The app shares the
process's ``Drain`` with the server that runs it, which flips it on SIGTERM.
"""

from __future__ import annotations

from fastapi import FastAPI

from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings
from mlship.serving.shutdown import PROCESS_DRAIN


def app_from_env() -> FastAPI:
    settings = ServeSettings()  # model_dir from MLSHIP_MODEL_DIR, set by `mlship serve`
    limit_threads(settings.threads)
    return create_app(settings, drain=PROCESS_DRAIN, settle_heap=True)


def limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP pools per worker (over-subscription collapses throughput under load).

    ``mlship serve`` already set OMP_NUM_THREADS and friends before any math library loaded;
    threadpoolctl (present wherever scikit-learn is) also caps pools opened some other way.
    onnxruntime's own pool is sized by the session options.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=threads)
