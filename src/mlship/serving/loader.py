"""Load the model once, in the background, so liveness answers while it loads."""

from __future__ import annotations

import logging
import threading

from mlship.errors import MlshipError
from mlship.scoring.predictor import Predictor
from mlship.serving.settings import ServeSettings

log = logging.getLogger("mlship.serving")


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
            )
            info = self.predictor.info
            log.info("model %s v%s loaded (%s)", info.name, info.version, self.predictor.runtime)
        except MlshipError as exc:
            self.error = str(exc)
            log.error("model failed to load: %s", exc)
        except Exception as exc:  # a broken artifact must not kill the liveness endpoint
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("model failed to load")
        finally:
            self.loaded.set()

    def start(self, background: bool = True) -> None:
        if background:
            threading.Thread(target=self.load, name="model-loader", daemon=True).start()
        else:
            self.load()
