"""Load the model once, in the background, so liveness answers while it loads.

Why a load failed is shown by ``/ready`` and logged, without the host's paths: a path inside
the model dir is shown relative to it (``MLmodel``, ``extra_files/model.onnx``) and any other
absolute path by its file name only.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
from pathlib import Path

from mlship.errors import MlshipError
from mlship.scoring.predictor import Predictor
from mlship.serving.settings import ServeSettings

log = logging.getLogger("mlship.serving")
ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/[^\s'\":,;()\[\]]+")
# Net container allocations before a young collection (CPython's default is 700). A request's
# lists are freed by reference counting when it ends, so they seldom add up to this many.
YOUNG_THRESHOLD = 7000


def without_paths(message: str, model_dir: Path) -> str:
    """``message`` with the model dir's prefix cut and other absolute paths shortened."""
    for root in dict.fromkeys((str(model_dir.resolve()), str(model_dir.absolute()))):
        message = message.replace(root + "/", "").replace(root, "<model dir>")
    return ABSOLUTE_PATH.sub(lambda m: Path(m.group()).name or "/", message)


def settle_heap() -> None:
    """Put what is alive once the model is loaded out of the cyclic collector's reach.

    The imports and the model leave ~112,000 tracked objects that live as long as the process,
    and every full collection walked them all: 62-66 ms, triggered every ~60 requests by the
    row lists of 1,000-row JSON bodies (1.1 ms a request on average, a 60 ms stall for the
    request that hit it). ``gc.freeze`` moves them to the permanent generation after one
    collection; the raised young threshold spares a request's own short-lived lists.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


class ModelHolder:
    """The predictor, or why there is none yet (loading) or none at all (failed).

    ``settle``: call ``settle_heap`` after a successful load; for a serving process, whose
    heap is the service's alone (not for an app built inside a test or a notebook).
    """

    def __init__(self, settings: ServeSettings, *, settle: bool = False) -> None:
        self.settings = settings
        self.settle = settle
        self.predictor: Predictor | None = None
        self.error: str | None = None
        self.loaded = threading.Event()

    def load(self) -> None:
        try:
            predictor = Predictor.load(
                self.settings.model_dir,
                runtime=self.settings.runtime,
                threads=self.settings.threads,
                manifest_sha256=self.settings.model_sha256,
                compiled_trees=self.settings.compiled_trees,
            )
            if self.settle:  # before readiness: the collection holds the GIL for ~60 ms
                settle_heap()
            self.predictor = predictor
            info = predictor.info
            log.info("model %s v%s loaded (%s)", info.name, info.version, predictor.runtime)
        except MlshipError as exc:
            self.failed(str(exc))
        except Exception as exc:  # a broken artifact must not kill the liveness endpoint
            self.failed(f"{type(exc).__name__}: {exc}")
            log.debug("model load traceback", exc_info=True)
        finally:
            self.loaded.set()

    def failed(self, message: str) -> None:
        self.error = without_paths(message, self.settings.model_dir)
        log.error("model failed to load: %s", self.error)

    def start(self, background: bool = True) -> None:
        if background:
            threading.Thread(target=self.load, name="model-loader", daemon=True).start()
        else:
            self.load()
