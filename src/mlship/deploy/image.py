"""``mlship image build``: put a model into the build context and run ``docker build``.

A model comes from a local saved model dir or from the registry (``models:/NAME@ALIAS`` or
``models:/NAME/VERSION``, exported with its metrics, config and manifest). Either way the dir
is verified against its manifest before ``docker build`` runs, and the Dockerfile's build-time
check verifies the copy inside the image again. The copy lives under
``.docker-context/`` in the build context for the duration of the build, and the image is
tagged ``NAME:VERSION`` with OCI labels naming the model, its version and run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlship import __version__
from mlship.errors import MlshipError
from mlship.model.saved import SavedModel, check_runtime, is_model_dir
from mlship.registry.uri import registry_ref
from mlship.scoring.predictor import Predictor

STAGING = ".docker-context"


@dataclass(frozen=True)
class ImageBuild:
    tag: str
    name: str
    version: str
    run_id: str
    runtime: str


def choose_runtime(model_dir: Path, requested: str) -> str:
    """``auto``: the ONNX image when the model's compiled twin passed parity, else scikit-learn."""
    return SavedModel.open(model_dir).serving_runtime(check_runtime(requested))


def docker_tag(name: str, version: str) -> str:
    """A valid docker reference from a model name and version."""
    repo = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "model"
    return f"{repo}:{version or 'latest'}"


@contextmanager
def staged_model(source: str, context: Path, tracking_uri: str) -> Iterator[Path]:
    """Yield the model dir as a path inside ``context``, copying or exporting it if needed."""
    ref = registry_ref(source)
    staging = context / STAGING / f"model-{uuid.uuid4().hex[:8]}"
    if ref is not None:
        from mlship.registry.models import export_model

        export_model(tracking_uri, *ref, staging)
    else:
        local = Path(source).resolve()
        if not is_model_dir(local):
            raise MlshipError(f"model {source}: not a saved model dir (no MLmodel file)")
        SavedModel.open(local)  # verified where the user put it, so errors name their dir
        if local.is_relative_to(context.resolve()):
            yield local
            return
        staging.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(local, staging, symlinks=True)  # byte for byte; the copy is verified too
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class BuildRequest:
    """What to build: the model (dir or registry URI) and how to call ``docker build``."""

    source: str
    context: Path = Path()
    dockerfile: Path = Path("Dockerfile")
    tag: str | None = None
    base_image: str | None = None
    tracking_uri: str = ""
    runtime: str = "auto"
    extra_args: list[str] = field(default_factory=list)


def build(request: BuildRequest) -> ImageBuild:
    """Stage the model and run ``docker build``; its output streams to the terminal."""
    if shutil.which("docker") is None:
        raise MlshipError("docker is not installed or not on PATH")
    context = request.context.resolve()
    with staged_model(request.source, context, request.tracking_uri) as model_dir:
        chosen = choose_runtime(model_dir, request.runtime)
        # Load it as the image will, so a bad model fails here, not halfway through the build.
        info = Predictor.load(model_dir, runtime=chosen).info
        image_tag = request.tag or docker_tag(info.name, info.version)
        args = [
            "docker", "build", "-f", str(request.dockerfile), "-t", image_tag,
            "--build-arg", f"MODEL_PATH={model_dir.relative_to(context).as_posix()}",
            "--build-arg", f"MODEL_NAME={info.name}",
            "--build-arg", f"MODEL_VERSION={info.version or 'unknown'}",
            "--build-arg", f"MODEL_RUN_ID={info.run_id or 'unknown'}",
            "--build-arg", f"MLSHIP_VERSION={__version__}",
            "--build-arg", f"RUNTIME={chosen}",
        ]  # fmt: skip
        if request.base_image:
            args += ["--build-arg", f"BASE_IMAGE={request.base_image}"]
        args += [*request.extra_args, str(context)]
        completed = subprocess.run(args, check=False)
        if completed.returncode != 0:
            raise MlshipError(f"docker build failed (exit {completed.returncode}); see above")
    return ImageBuild(
        tag=image_tag, name=info.name, version=info.version, run_id=info.run_id, runtime=chosen
    )
