"""``mlship image build``: put a model into the build context and run ``docker build``.

A model comes from a local saved model dir or from the registry (``models:/NAME@ALIAS`` or
``models:/NAME/VERSION``, exported with its metrics and config). The copy lives under
``.docker-context/`` in the build context for the duration of the build, and the image is
tagged ``NAME:VERSION`` with OCI labels naming the model, its version and run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlship.errors import MlshipError
from mlship.predictor import ONNX_FILE, Predictor, onnx_parity

STAGING = ".docker-context"
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ImageBuild:
    tag: str
    name: str
    version: str
    run_id: str
    runtime: str


def choose_runtime(model_dir: Path, requested: str) -> str:
    """``auto``: the ONNX image when the model's compiled twin passed parity, else scikit-learn."""
    if requested not in ("auto", "onnx", "sklearn"):
        raise MlshipError(f"--runtime {requested!r}: choose auto, onnx or sklearn")
    if requested != "auto":
        return requested
    report = onnx_parity(model_dir)
    passed = bool(report and report.get("passed")) and (model_dir / ONNX_FILE).is_file()
    return "onnx" if passed else "sklearn"


def docker_tag(name: str, version: str) -> str:
    """A valid docker reference from a model name and version."""
    repo = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "model"
    return f"{repo}:{version or 'latest'}"


@contextmanager
def staged_model(source: str, context: Path, tracking_uri: str) -> Iterator[Path]:
    """Yield the model dir as a path inside ``context``, copying or exporting it if needed."""
    match = REGISTRY_URI.match(source)
    staging = context / STAGING / f"model-{uuid.uuid4().hex[:8]}"
    if match:
        from mlship.tracking import export_model

        ref = match["alias"] or match["version"]
        export_model(tracking_uri, match["name"], ref, staging)
    else:
        local = Path(source).resolve()
        if not (local / "MLmodel").is_file():
            raise MlshipError(f"--model {source}: not a saved model dir (no MLmodel file)")
        if local.is_relative_to(context.resolve()):
            yield local
            return
        staging.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(local, staging)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build(
    source: str,
    *,
    tag: str | None,
    context: Path,
    dockerfile: Path,
    base_image: str | None,
    tracking_uri: str,
    runtime: str = "auto",
    extra_args: list[str] | None = None,
) -> ImageBuild:
    """Stage the model and run ``docker build``; its output streams to the terminal."""
    if shutil.which("docker") is None:
        raise MlshipError("docker is not installed or not on PATH")
    context = context.resolve()
    with staged_model(source, context, tracking_uri) as model_dir:
        chosen = choose_runtime(model_dir, runtime)
        # Load it as the image will, so a bad model fails here, not halfway through the build.
        predictor = Predictor.load(model_dir, runtime=chosen)  # type: ignore[arg-type]
        info = predictor.info
        info_file = model_dir / "mlship.json"
        if info_file.is_file():
            json.loads(info_file.read_text())  # must be valid JSON to label the image
        image_tag = tag or docker_tag(info.name, info.version)
        args = [
            "docker", "build", "-f", str(dockerfile), "-t", image_tag,
            "--build-arg", f"MODEL_PATH={model_dir.relative_to(context).as_posix()}",
            "--build-arg", f"MODEL_NAME={info.name}",
            "--build-arg", f"MODEL_VERSION={info.version or 'unknown'}",
            "--build-arg", f"MODEL_RUN_ID={info.run_id or 'unknown'}",
            "--build-arg", f"RUNTIME={chosen}",
        ]  # fmt: skip
        if base_image:
            args += ["--build-arg", f"BASE_IMAGE={base_image}"]
        args += [*(extra_args or []), str(context)]
        completed = subprocess.run(args, check=False)
        if completed.returncode != 0:
            raise MlshipError(f"docker build failed (exit {completed.returncode}); see above")
    return ImageBuild(
        tag=image_tag, name=info.name, version=info.version, run_id=info.run_id, runtime=chosen
    )
