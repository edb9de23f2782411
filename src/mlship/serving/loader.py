"""Load the model once, in the background, so liveness answers while it loads.

Why a load failed is shown by ``/ready`` and logged, without the host's paths: a path inside
the model dir is shown relative to it (``MLmodel``, ``extra_files/model.onnx``) and any other
absolute path by its file name only.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from mlship.errors import MlshipError
from mlship.scoring.predictor import Predictor
from mlship.serving.settings import ServeSettings

log = logging.getLogger("mlship.serving")
ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/[^\s'\":,;()\[\]]+")


def without_paths(message: str, model_dir: Path) -> str:
    """``message`` with the model dir's prefix cut and other absolute paths shortened."""
    for root in dict.fromkeys((str(model_dir.resolve()), str(model_dir.absolute()))):
        message = message.replace(root + "/", "").replace(root, "<model dir>")
    return ABSOLUTE_PATH.sub(lambda m: Path(m.group()).name or "/", message)


class ModelHolder:
    """The predictor, or why there is none yet (loading) or none at all (failed)."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.predictor: Predictor | None = None
        self.error: str | None = None
        self.loaded = threading.Event()

    def load(self) -> None:
        try:
            self.predictor = Predictor.load(
                self.settings.model_dir,
                runtime=self.settings.runtime,
                threads=self.settings.threads,
                manifest_sha256=self.settings.model_sha256,
            )
            info = self.predictor.info
            log.info("model %s v%s loaded (%s)", info.name, info.version, self.predictor.runtime)
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
