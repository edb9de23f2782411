"""``mlship bundle``: a self-contained, offline deployment bundle for a plain Linux VM.

The archive (one top directory ``NAME-VERSION/`` in a ``.tar.gz``) holds:

- ``model/``: the saved model dir (from a local dir, any fsspec URI such as ``gs://``, or the
  registry as ``models:/NAME@ALIAS``);
- ``wheelhouse/``: exactly the serving dependencies of the runtime the model serves with
  (``requirements/serve-<runtime>.txt``, the hash-pinned export of ``uv.lock``) as binary
  wheels for the target platform and CPython, fetched with ``pip download``; the mlship wheel;
  and a pip wheel that bootstraps the venv where ``python3`` has no ``ensurepip``;
- ``requirements.txt``: those pins with their hashes (markers evaluated for the target, not
  for the machine building the bundle) plus the mlship wheel's, so the install is
  ``pip install --no-index --require-hashes``;
- ``install.sh``, ``activate``, ``mlship.env``, ``mlship-NAME.service`` (a hardened systemd
  unit), ``README.md``, ``bundle.json`` and ``SHA256SUMS`` over every other file.

``install.sh`` lays out ``/opt/mlship/NAME/VERSION`` beside earlier versions; ``activate``
moves the ``current`` symlink (and ``previous`` to the one it replaced) and restarts the unit,
so switching versions and rolling back are one command each.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from mlship import __version__
from mlship.deploy.wheelhouse import (
    BundleError,
    Target,
    download_wheels,
    mlship_wheel,
    requirements_file,
    target_pins,
)

PREFIX = "/opt/mlship"
UNIT_DIR = "/etc/systemd/system"
TEMPLATES = ("install.sh", "activate", "unit.service", "mlship.env", "README.md")
EXECUTABLE = frozenset({"install.sh", "activate"})
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
__all__ = ["Bundle", "BundleError", "BundleRequest", "Service", "Target", "build"]


@dataclass(frozen=True)
class Service:
    """How the installed unit serves: port, workers and its memory cap."""

    port: int = 8888
    workers: int = 1
    memory_max: str = "1G"

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise BundleError(f"--port {self.port}: not a TCP port")
        if self.port < 1024:
            raise BundleError(f"--port {self.port}: the unit has no capability to bind below 1024")
        if self.workers < 1:
            raise BundleError(f"--workers {self.workers}: at least 1")
        if not re.fullmatch(r"\d+(\.\d+)?[KMGT]?|\d{1,2}%|infinity", self.memory_max):
            raise BundleError(f"--memory-max {self.memory_max!r}: e.g. 512M, 2G or 50%")


@dataclass(frozen=True)
class BundleRequest:
    """What to bundle and for where."""

    source: str  # a model dir, a scheme:// URI of one, or models:/NAME@ALIAS|/VERSION
    output: Path
    tracking_uri: str = ""  # for models:/ sources
    runtime: str = "auto"
    target: Target = field(default_factory=Target)
    service: Service = field(default_factory=Service)
    requirements_dir: Path | None = None  # default: the source checkout's requirements/
    wheel: Path | None = None  # default: built from the source checkout


@dataclass(frozen=True)
class Bundle:
    path: Path
    name: str
    version: str
    run_id: str
    runtime: str
    target: Target
    wheels: int
    size_bytes: int


def stage_model(source: str, dest: Path, tracking_uri: str) -> None:
    """Copy the model to ``dest`` from a local dir, a ``scheme://`` URI or ``models:/...``."""
    from mlship.model.saved import is_model_dir
    from mlship.registry.uri import registry_ref

    ref = registry_ref(source)
    if ref is not None:
        from mlship.registry.models import export_model

        export_model(tracking_uri, *ref, dest)
    elif "://" in source:
        download_dir(source, dest)
    elif Path(source).is_dir():
        shutil.copytree(source, dest)
    else:
        raise BundleError(f"--model {source}: no such directory")
    if not is_model_dir(dest):
        raise BundleError(f"--model {source}: not a saved model dir (no MLmodel file)")


def download_dir(uri: str, dest: Path) -> None:
    """Every object under ``uri`` (any fsspec filesystem) into ``dest``, keeping the layout."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(uri)
    except ImportError as exc:
        raise BundleError(f"--model {uri}: the filesystem is not installed ({exc})") from None
    root = root.rstrip("/")
    files = [str(p) for p in fs.find(root)]
    if not files:
        raise BundleError(f"--model {uri}: nothing there")
    for remote in files:
        local = dest / remote[len(root) :].lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(remote, str(local))


def render(template: str, values: dict[str, str]) -> str:
    """A template of ``mlship/deploy/templates/bundle`` with every ``@KEY@`` filled in."""
    text = resources.files("mlship.deploy").joinpath("templates", "bundle", template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise BundleError(f"template {template}: no value for {', '.join(left)}")
    return text


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the bundle ------------------------------------------------------------------------------


def build(request: BundleRequest, progress: Callable[[str], None] | None = None) -> Bundle:
    """Build the bundle at ``request.output``, written whole (a temp file renamed into place)."""
    from mlship.model.saved import SavedModel, check_runtime

    say = progress or (lambda _: None)
    if not request.output.name.endswith((".tar.gz", ".tgz")):
        raise BundleError(f"--output {request.output}: name it FILE.tar.gz")
    with tempfile.TemporaryDirectory(prefix="mlship-bundle-") as scratch:
        work = Path(scratch)
        say(f"staging the model from {request.source}")
        stage_model(request.source, work / "model", request.tracking_uri)
        saved = SavedModel.open(work / "model")
        runtime = saved.serving_runtime(check_runtime(request.runtime))
        name, version = _safe(saved.info.name, "name"), _safe(saved.info.version or "0", "version")
        tree = work / f"{name}-{version}"
        tree.mkdir()
        (work / "model").rename(tree / "model")

        pins = target_pins(requirements_file(runtime, request.requirements_dir).read_text(),
                           request.target)  # fmt: skip
        pins = [p for p in pins if p.name.lower() != "mlship"]
        say(f"downloading {len(pins)} wheels ({runtime} runtime) for {request.target.platform}, "
            f"CPython {request.target.python}")  # fmt: skip
        download_wheels(pins, tree / "wheelhouse", request.target)
        if request.wheel is None:
            say("building the mlship wheel")
        wheel = mlship_wheel(request.wheel, work / "dist")
        shutil.copy2(wheel, tree / "wheelhouse" / wheel.name)
        own = f"mlship=={wheel.name.split('-')[1]} --hash=sha256:{sha256(wheel)}"
        (tree / "requirements.txt").write_text(
            f"# Serving dependencies of the {runtime} runtime: pinned and hashed from uv.lock.\n"
            + "".join(f"{p.line}\n" for p in pins)
            + f"{own}\n"
        )
        values = _values(request, name, version, saved.info.run_id, runtime)
        _write_files(tree, values)
        wheels = sorted(p.name for p in (tree / "wheelhouse").glob("*.whl"))
        _write_manifest(tree, values, wheels)
        say(f"writing {request.output}")
        _archive(tree, request.output)
    return Bundle(
        path=request.output,
        name=name,
        version=version,
        run_id=saved.info.run_id,
        runtime=runtime,
        target=request.target,
        wheels=len(wheels),
        size_bytes=request.output.stat().st_size,
    )


def _safe(value: str, what: str) -> str:
    if not SAFE_NAME.fullmatch(value):
        raise BundleError(f"model {what} {value!r} cannot name a directory and a systemd unit")
    return value


def _values(
    request: BundleRequest, name: str, version: str, run_id: str, runtime: str
) -> dict[str, str]:
    service = request.service
    return {
        "NAME": name,
        "VERSION": version,
        "RUN_ID": run_id or "unknown",
        "RUNTIME": runtime,
        "PYTHON": request.target.python,
        "PLATFORM": request.target.platform,
        "PREFIX": PREFIX,
        "UNIT_DIR": UNIT_DIR,
        "UNIT": f"mlship-{name}.service",
        "ETC_ENV": f"/etc/mlship/{name}.env",
        "HOST": "0.0.0.0",
        "PORT": str(service.port),
        "WORKERS": str(service.workers),
        "MEMORY_MAX": service.memory_max,
        "MLSHIP_VERSION": __version__,
        "ARCHIVE": request.output.name,
        "TOP": f"{name}-{version}",
    }


def _write_files(tree: Path, values: dict[str, str]) -> None:
    for template in TEMPLATES:
        path = tree / (values["UNIT"] if template == "unit.service" else template)
        path.write_text(render(template, values))
        path.chmod(0o755 if template in EXECUTABLE else 0o644)


def _write_manifest(tree: Path, values: dict[str, str], wheels: list[str]) -> None:
    """``bundle.json`` (what and for where), then ``SHA256SUMS`` over every other file."""
    manifest = {
        "name": values["NAME"],
        "version": values["VERSION"],
        "run_id": values["RUN_ID"],
        "runtime": values["RUNTIME"],
        "platform": values["PLATFORM"],
        "python": values["PYTHON"],
        "mlship": values["MLSHIP_VERSION"],
        "unit": values["UNIT"],
        "install_dir": f"{values['PREFIX']}/{values['NAME']}/{values['VERSION']}",
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wheels": wheels,
    }
    (tree / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n")
    files = sorted(p for p in tree.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    sums = "".join(f"{sha256(p)}  {p.relative_to(tree).as_posix()}\n" for p in files)
    (tree / "SHA256SUMS").write_text(sums)


def _archive(tree: Path, output: Path) -> None:
    """A gzipped tar of ``tree`` (sorted, owned by root) renamed onto ``output`` when whole."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp-{uuid.uuid4().hex[:8]}")

    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as archive:
            for path in [tree, *sorted(tree.rglob("*"))]:
                arcname = (Path(tree.name) / path.relative_to(tree)).as_posix()
                archive.add(path, arcname=arcname, recursive=False, filter=as_root)
        tmp.replace(output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
