"""Read a saved model dir into a typed ``SavedModel``, verifying it before anything else.

``SavedModel.open`` checks the dir against its manifest (``manifest``) before any file is
parsed or unpickled, then refuses formats it does not know.

We read the ``MLmodel`` file (YAML) directly rather than through ``mlflow.pyfunc``, so the
scoring image needs neither MLflow nor its dependency tree. The fields read (flavor ``sklearn``
with ``pickled_model`` and ``serialization_format``, ``signature.inputs``, ``metadata``,
``run_id``) are MLflow's documented model format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mlship.errors import ModelError
from mlship.model import layout, manifest
from mlship.model.parity import ParityReport, read_parity

Runtime = Literal["auto", "onnx", "sklearn"]
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})


@dataclass(frozen=True)
class Column:
    """One input column of the model, as its signature and training metadata describe it."""

    name: str
    kind: Literal["numeric", "categorical"]
    nullable: bool


@dataclass(frozen=True)
class ModelInfo:
    """Identity and training facts of a saved model, for replies, metadata and image labels."""

    name: str
    version: str
    run_id: str
    task: str
    target: str
    algorithm: str
    classes: list[str]
    positive_class: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    format_version: int = layout.FORMAT_VERSION
    mlship_version: str = ""
    ignored_columns: list[str] = field(default_factory=list)
    manifest_sha256: str = ""
    # Binary classifiers (format 3): positive_class iff P(positive_class) >= this; None: argmax.
    decision_threshold: float | None = None


def check_runtime(name: str) -> Runtime:
    """A runtime name, or a one-line error listing the choices."""
    if name not in layout.RUNTIMES:
        raise ModelError(f"runtime {name!r}: choose one of {', '.join(layout.RUNTIMES)}")
    return name  # type: ignore[return-value]


@dataclass(frozen=True)
class SavedModel:
    """A model dir whose format is known, with its signature and identity read once."""

    root: Path
    columns: list[Column]
    info: ModelInfo
    flavor: dict[str, Any]
    parity: ParityReport | None

    @classmethod
    def open(cls, path: Path | str, *, manifest_sha256: str | None = None) -> SavedModel:
        """Read ``path``, verifying it against its manifest before anything else is read.

        A dir that is not a model dir, of an unknown format, that fails its manifest or (format
        1 and later) has none is refused; a format-0 dir (mlship 0.1.0) has none and is read as
        before. ``manifest_sha256`` pins the manifest to the digest the registry recorded.
        """
        root = Path(path)
        if not root.is_dir():
            raise ModelError(f"model dir {root} does not exist")
        verified = manifest.verify(root)
        _check_pin(root, verified, manifest_sha256)
        extra = _read_info(root)
        _check_identity(root, verified, extra)
        spec = _read_mlmodel(root)
        meta = spec.get("metadata") or {}
        inputs = (spec.get("signature") or {}).get("inputs")
        if not inputs:
            raise ModelError(f"{root}/{layout.MLMODEL} has no input signature")
        columns = _columns(json.loads(inputs), meta)
        info = ModelInfo(
            name=str(extra.get("name", root.name)),
            version=str(extra.get("version", "")),
            run_id=str(extra.get("run_id", spec.get("run_id", ""))),
            task=str(meta.get("task", "classification")),
            target=str(meta.get("target", "")),
            algorithm=str(meta.get("algorithm", "")),
            classes=[str(c) for c in meta.get("classes") or []],
            positive_class=meta.get("positive_class"),
            metrics={k: float(v) for k, v in (extra.get("metrics") or {}).items()},
            format_version=int(extra.get("format_version", 0)),
            mlship_version=str(extra.get("mlship_version", "")),
            ignored_columns=[str(c) for c in meta.get("ignored") or []],
            manifest_sha256=verified.sha256 if verified else "",
            decision_threshold=_threshold(root, meta),
        )
        return cls(root, columns, info, spec["flavors"]["sklearn"], read_parity(root))

    @property
    def onnx_ready(self) -> bool:
        """The compiled twin exists and passed its parity check at training time."""
        return bool(self.parity and self.parity.passed) and (self.root / layout.ONNX).is_file()

    def serving_runtime(self, requested: Runtime) -> Runtime:
        """The runtime a request resolves to: ``auto`` is ONNX exactly when it is ready."""
        if requested == "onnx" and not self.onnx_ready:
            report = self.parity
            why = "no compiled model" if report is None else f"parity failed: {report.reason}"
            raise ModelError(f"runtime onnx: {self.root} cannot use ONNX ({why}); use sklearn")
        if requested == "auto":
            return "onnx" if self.onnx_ready else "sklearn"
        return requested

    def load_estimator(self) -> Any:
        """Unpickle (or skops-load) the fitted pipeline.

        ``open`` verified the file against the manifest; that proves it is the file export
        wrote, not that a pickle from elsewhere is safe (see the README's trust boundary).
        """
        name = str(self.flavor.get("pickled_model", "model.pkl"))
        if not manifest.is_plain_relative(name):
            raise ModelError(f"model dir {self.root}: pickled_model {name!r} is not a file in it")
        path = self.root / name
        fmt = self.flavor.get("serialization_format", "pickle")
        if not path.is_file():
            raise ModelError(f"model dir {self.root}: {path.name} is missing")
        if fmt == "skops":  # MLflow's default format, for models logged by other tooling
            try:
                import skops.io
            except ImportError:
                raise ModelError(
                    f"model dir {self.root}: saved with skops, which is not installed"
                ) from None
            return skops.io.load(path, trusted=self.flavor.get("skops_trusted_types") or [])
        if fmt in ("pickle", "cloudpickle"):
            import pickle

            with path.open("rb") as handle:
                return pickle.load(handle)
        raise ModelError(f"model dir {self.root}: unsupported serialization_format {fmt!r}")


def _check_pin(root: Path, verified: manifest.Manifest | None, pin: str | None) -> None:
    if pin is None:
        return
    if verified is None:
        raise ModelError(
            f"model dir {root}: no {layout.MANIFEST} to check against the pinned digest"
        )
    if verified.sha256 != pin.lower():
        raise ModelError(
            f"model dir {root}: {layout.MANIFEST} digest {verified.sha256[:16]}... is not the "
            f"pinned {pin[:16]}..."
        )


def _check_identity(root: Path, verified: manifest.Manifest | None, extra: dict[str, Any]) -> None:
    """A format-1 dir must carry a manifest, and the manifest must describe the same model."""
    fmt = int(extra.get("format_version", 0))
    if verified is None:
        if fmt >= 1:
            raise ModelError(
                f"model dir {root}: no {layout.MANIFEST} (format {fmt} dirs carry one); "
                "re-export the model from the registry"
            )
        return
    stated = (fmt, *(str(extra.get(key, "")) for key in ("name", "version", "run_id")))
    listed = (verified.format_version, verified.name, verified.version, verified.run_id)
    if stated != listed:
        raise ModelError(
            f"model dir {root}: {layout.MANIFEST} describes format {listed[0]} {listed[1]} "
            f"v{listed[2]} (run {listed[3]}), {layout.INFO} format {stated[0]} {stated[1]} "
            f"v{stated[2]} (run {stated[3]})"
        )


def _columns(inputs: list[dict[str, Any]], meta: dict[str, Any]) -> list[Column]:
    """Signature order; the role from training's metadata (signature types are ``any`` since
    0.2), from the signature's type for a dir whose metadata does not list numeric columns."""
    numeric = meta.get("numeric")
    categorical = set(meta.get("categorical") or [])
    nullable = set(meta.get("nullable") or [])

    def kind(item: dict[str, Any]) -> Literal["numeric", "categorical"]:
        if numeric is not None:
            return "numeric" if item["name"] in numeric else "categorical"
        typed = item["name"] not in categorical and item.get("type") in NUMERIC_TYPES
        return "numeric" if typed else "categorical"

    return [Column(item["name"], kind(item), item["name"] in nullable) for item in inputs]


def _threshold(root: Path, meta: dict[str, Any]) -> float | None:
    """``decision_threshold`` (format 3): a number in (0, 1) of a binary classifier, or None.

    Older dirs have none: their labels are the most probable class, as they always were.
    """
    value = meta.get("decision_threshold")
    if value is None:
        return None
    where = f"{root}/{layout.MLMODEL} metadata decision_threshold {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ModelError(f"{where}: not a number in (0, 1)")
    classes = meta.get("classes") or []
    if meta.get("task", "classification") != "classification" or len(classes) != 2:
        raise ModelError(f"{where}: only a binary classifier has a threshold")
    if meta.get("positive_class") not in classes:
        raise ModelError(f"{where}: positive_class {meta.get('positive_class')!r} is not a class")
    return float(value)


def is_model_dir(path: Path) -> bool:
    return (path / layout.MLMODEL).is_file()


def _read_mlmodel(root: Path) -> dict[str, Any]:
    mlmodel = root / layout.MLMODEL
    if not mlmodel.is_file():
        raise ModelError(f"{root} is not a saved model dir (no {layout.MLMODEL} file)")
    try:
        loaded = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"{mlmodel}: not valid YAML ({type(exc).__name__})") from None
    if not isinstance(loaded, dict) or "sklearn" not in (loaded.get("flavors") or {}):
        raise ModelError(f"{mlmodel}: not a scikit-learn MLflow model")
    return loaded


def _read_info(root: Path) -> dict[str, Any]:
    """``mlship.json``; its ``format_version`` must be one this mlship knows."""
    path = root / layout.INFO
    if not path.is_file():
        return {}
    try:
        info: Any = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise ModelError(f"{path}: expected a JSON object")
    version = info.get("format_version", 0)
    if not isinstance(version, int) or version not in layout.KNOWN_FORMATS:
        newest = max(layout.KNOWN_FORMATS)
        raise ModelError(
            f"{root}: model format {version!r} is not known to this mlship (reads up to "
            f"{newest}); upgrade mlship or re-export the model"
        )
    return info
