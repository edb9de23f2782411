"""The reference profile: what the training data and the holdout's predictions looked like.

``extra_files/profile.json`` in a model dir (covered by the manifest like every file), written
at training time and read by ``mlship monitor``. Small, readable, versioned JSON::

    {"profile_version": 1, "rows": 856, "holdout_rows": 214,
     "features": {"PriceCH": {"type": "numeric", "null_rate": 0.0,
                              "quantiles": {"0.01": 1.69, ..., "0.99": 2.09},
                              "bins": {"edges": [1.69, 1.75, ...], "shares": [...]}},
                  "StoreID": {"type": "categorical", "null_rate": 0.0,
                              "bins": {"categories": {"7": 0.33, ...}, "other": 0.0}}},
     "prediction": {"labels": {"categories": {"CH": 0.61, "MM": 0.39}, "other": 0.0},
                    "probabilities": {"MM": {"edges": [0.1, ..., 0.9], "shares": [...]}}}}

Numeric bins are open-ended: ``edges`` e_1 < ... < e_k cut the line into k + 1 bins,
(-inf, e_1), [e_1, e_2), ..., [e_k, inf), and ``shares`` holds the training share of the
non-missing values in each. Categorical bins list the share of each category seen often enough,
the rest counted in ``other`` (so an unseen category lands there too). A regression model's
prediction has ``values`` (numeric bins) instead of ``labels`` and ``probabilities``.

The binning helpers below are the profile's own rules, used to build it and to compare a batch
with it, so both sides count the same way.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlship.errors import ModelError
from mlship.model import layout

PROFILE_VERSION = 1
KNOWN_VERSIONS = frozenset({1})
MAX_PROFILE_BYTES = 1 << 20
FLOOR = 1e-4  # the least share PSI counts with


@dataclass(frozen=True)
class NumericBins:
    edges: tuple[float, ...]
    shares: tuple[float, ...]

    @property
    def size(self) -> int:
        return len(self.edges) + 1

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """Each value's bin (non-missing floats): the number of edges at or below it."""
        return np.searchsorted(self.edge_array, values, side="right")

    @functools.cached_property
    def edge_array(self) -> np.ndarray:
        return np.asarray(self.edges, dtype=np.float64)

    def shares_of(self, values: np.ndarray) -> tuple[float, ...]:
        """The share of ``values`` (non-missing floats) in each bin."""
        return _normalise(np.bincount(self.bin_of(values), minlength=self.size))

    def to_json(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "shares": list(self.shares)}


@dataclass(frozen=True)
class CategoryBins:
    categories: dict[str, float]
    other: float

    @property
    def size(self) -> int:
        return len(self.categories) + 1

    def bin_of(self, values: np.ndarray | list[str]) -> np.ndarray:
        """Each text's bin: the position of its category, or the last bin (other). One dict
        lookup a value through ``map`` (no Python-level loop; 3x a binary search of objects)."""
        cells = values.tolist() if isinstance(values, np.ndarray) else values
        position = {name: i for i, name in enumerate(self.categories)}
        found = map(position.get, cells, itertools.repeat(len(position)))
        return np.fromiter(found, dtype=np.intp, count=len(cells))

    def shares_of(self, values: list[str]) -> tuple[float, ...]:
        """The share of each known category in ``values``, then of the rest (``other``)."""
        return _normalise(np.bincount(self.bin_of(values), minlength=self.size))

    @property
    def shares(self) -> tuple[float, ...]:
        return (*self.categories.values(), self.other)

    def to_json(self) -> dict[str, Any]:
        return {"categories": dict(self.categories), "other": self.other}


Bins = NumericBins | CategoryBins


@dataclass(frozen=True)
class FeatureProfile:
    name: str
    kind: str  # "numeric" or "categorical"
    null_rate: float
    bins: Bins
    quantiles: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind, "null_rate": self.null_rate}
        if self.quantiles:
            out["quantiles"] = dict(self.quantiles)
        return out | {"bins": self.bins.to_json()}


@dataclass(frozen=True)
class PredictionProfile:
    labels: CategoryBins | None = None
    probabilities: dict[str, NumericBins] | None = None
    values: NumericBins | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.labels is not None:
            out["labels"] = self.labels.to_json()
        if self.probabilities is not None:
            out["probabilities"] = {k: v.to_json() for k, v in self.probabilities.items()}
        if self.values is not None:
            out["values"] = self.values.to_json()
        return out


@dataclass(frozen=True)
class Profile:
    rows: int
    holdout_rows: int
    features: dict[str, FeatureProfile]
    prediction: PredictionProfile

    def to_json(self) -> dict[str, Any]:
        return {
            "profile_version": PROFILE_VERSION,
            "rows": self.rows,
            "holdout_rows": self.holdout_rows,
            "features": {name: f.to_json() for name, f in self.features.items()},
            "prediction": self.prediction.to_json(),
        }


def psi(reference: Sequence[float] | np.ndarray, batch: Sequence[float] | np.ndarray) -> float:
    """Population stability index of ``batch`` shares against ``reference`` shares:
    ``sum((batch - ref) * ln(batch / ref))``, shares floored at ``FLOOR`` so an empty bin is
    finite. The one implementation: ``mlship monitor`` and the service's live gauges use it."""
    ref = np.clip(np.asarray(reference, dtype=float), FLOOR, None)
    got = np.clip(np.asarray(batch, dtype=float), FLOOR, None)
    return float(np.sum((got - ref) * np.log(got / ref)))


def quantile_bins(values: np.ndarray, count: int = 10) -> NumericBins:
    """Bins cut at the ``count``-quantiles of ``values`` (ties merged), with the shares in each."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, count + 1)[1:-1]))
    bins = NumericBins(tuple(_round(e) for e in edges), ())
    return NumericBins(bins.edges, bins.shares_of(values))


def fixed_bins(values: np.ndarray, edges: tuple[float, ...]) -> NumericBins:
    bins = NumericBins(edges, ())
    return NumericBins(edges, bins.shares_of(values))


def category_bins(values: list[str], min_share: float = 0.01, most: int = 50) -> CategoryBins:
    """Shares of the (``most`` commonest) categories of ``min_share`` or more; the rest: other."""
    names, counts = np.unique(np.asarray(values, dtype=object).astype(str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    total = max(len(values), 1)
    kept = [int(i) for i in order[:most] if counts[i] / total >= min_share]
    shares = {str(names[i]): _round(counts[i] / total) for i in kept}
    return CategoryBins(shares, _round(max(0.0, 1.0 - counts[kept].sum() / total)))


def write_profile(model_dir: Path, profile: Profile) -> Path:
    """Write ``profile.json`` into ``model_dir`` (the file's name inside ``extra_files/``)."""
    path = model_dir / Path(layout.PROFILE).name
    path.write_text(json.dumps(profile.to_json(), indent=1) + "\n", encoding="utf-8")
    return path


def read_profile(root: Path) -> Profile | None:
    """The profile of a model dir; None when it has none (a dir from before profiles)."""
    path = root / layout.PROFILE
    if not path.is_file():
        return None
    where = f"model dir {root}: {layout.PROFILE}"
    if path.stat().st_size > MAX_PROFILE_BYTES:
        raise ModelError(f"{where} is over 1 MiB; a profile is a few KiB")
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{where} is not valid JSON ({type(exc).__name__})") from None
    return parse_profile(raw, where)


def parse_profile(raw: Any, where: str) -> Profile:
    """A profile from its JSON form; a one-line ``ModelError`` naming the first fault."""
    if not isinstance(raw, dict):
        raise ModelError(f"{where} is malformed (expected a JSON object)")
    version = raw.get("profile_version")
    if version not in KNOWN_VERSIONS:
        raise ModelError(
            f"{where}: profile_version {version!r} is not known to this mlship (reads "
            f"{sorted(KNOWN_VERSIONS)}); upgrade mlship"
        )
    features = raw.get("features")
    if not isinstance(features, dict):
        raise ModelError(f"{where} is malformed (features must be an object)")
    try:
        parsed = {str(k): _feature(str(k), v) for k, v in features.items()}
        prediction = _prediction(raw.get("prediction"))
        rows, holdout = int(raw["rows"]), int(raw["holdout_rows"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where} is malformed ({type(exc).__name__}: {exc})") from None
    return Profile(rows, holdout, parsed, prediction)


def _feature(name: str, raw: dict[str, Any]) -> FeatureProfile:
    kind = raw["type"]
    if kind not in ("numeric", "categorical"):
        raise ValueError(f"feature {name}: type {kind!r}")
    bins: Bins = _numeric(raw["bins"]) if kind == "numeric" else _categories(raw["bins"])
    quantiles = {str(k): float(v) for k, v in raw.get("quantiles", {}).items()}
    return FeatureProfile(name, kind, float(raw["null_rate"]), bins, quantiles)


def _numeric(raw: dict[str, Any]) -> NumericBins:
    edges = tuple(float(e) for e in raw["edges"])
    shares = tuple(float(s) for s in raw["shares"])
    if len(shares) != len(edges) + 1 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError("numeric bins need increasing edges and one share more than edges")
    return NumericBins(edges, shares)


def _categories(raw: dict[str, Any]) -> CategoryBins:
    return CategoryBins(
        {str(k): float(v) for k, v in raw["categories"].items()}, float(raw["other"])
    )


def _prediction(raw: Any) -> PredictionProfile:
    if not isinstance(raw, dict):
        raise TypeError("prediction must be an object")
    labels = _categories(raw["labels"]) if "labels" in raw else None
    probabilities = (
        {str(k): _numeric(v) for k, v in raw["probabilities"].items()}
        if "probabilities" in raw
        else None
    )
    values = _numeric(raw["values"]) if "values" in raw else None
    return PredictionProfile(labels, probabilities, values)


def _normalise(counts: np.ndarray) -> tuple[float, ...]:
    total = float(counts.sum())
    return tuple(_round(c / total) if total else 0.0 for c in counts)


def _round(value: float) -> float:
    """Six significant digits: exact enough to bin by, short enough to read."""
    number = float(value)
    return number if number == 0 or not math.isfinite(number) else float(f"{number:.6g}")
