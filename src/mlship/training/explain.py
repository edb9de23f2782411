"""What drives a fitted pipeline: SHAP contributions per raw feature, permutation importance.

SHAP runs on the features the estimator sees (after the pipeline's preprocessing) and is summed
back to the raw columns: the one-hot columns of a category add up to that category's
contribution, so every raw feature gets one number per row and output. Tree ensembles get
``shap.TreeExplainer`` (exact, fast), linear models ``shap.LinearExplainer``; a model neither
fits, or whose tree explanation does not add up to its own output (HistGradientBoosting with
native categorical splits, say), gets shap's model-agnostic permutation explainer on a small
background sample. Every result is checked: contributions plus the base value must equal the
model's output on the explained scale, or it is not returned.

What is explained, per task: binary classifiers toward the positive class (log-odds for
linear models and boosted trees, probability for random forests); multiclass toward each
class (per-class margins, or probabilities); regression the predicted value.

Imported only by training and ``mlship explain``: shap is in the train extra only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mlship.errors import ModelError

LINEAR_MODELS = frozenset({"LogisticRegression", "Ridge"})
TREE_MODELS = frozenset(
    {
        "RandomForestClassifier",
        "RandomForestRegressor",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
        "LGBMClassifier",
        "LGBMRegressor",
        "XGBoostClassifier",
        "XGBClassifier",
        "XGBRegressor",
    }
)
BACKGROUND_ROWS = 50  # the model-agnostic explainer's background sample
ADDITIVITY_TOLERANCE = 1e-4  # of the output's spread: float32 models (XGBoost) land near 1e-6


class ExplainError(ModelError):
    """No explainer gave contributions that add up to the model's output."""


@dataclass(frozen=True)
class Contributions:
    """Per-row contributions of each raw feature to each explained output.

    ``values`` is (rows, features, outputs) and ``base`` (rows, outputs): for every row and
    output, ``base + values.sum(axis=1)`` is the model's output on ``scale``.
    """

    values: np.ndarray
    base: np.ndarray
    features: list[str]
    outputs: list[str]  # the class explained per output, or the target for regression
    scale: str  # log-odds, margin, probability or value
    explainer: str  # tree, linear or permutation

    def mean_abs(self) -> pd.DataFrame:
        """Mean |contribution| per raw feature (one column per output), largest first."""
        table = pd.DataFrame(
            np.abs(self.values).mean(axis=0), index=self.features, columns=self.outputs
        )
        table.index.name = "feature"
        return table.sort_values(self.outputs[0], ascending=False)


def require_shap() -> Any:
    """The shap module, or a one-line error saying where it comes from."""
    try:
        import shap  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ModelError(
            "explanations need shap, which is in the training environment only: install the "
            f"train extra (pip install 'mlship[train]') ({exc.name or exc} is not installed)"
        ) from None
    return shap


def raw_feature_groups(preprocess: Any) -> list[tuple[str, list[int]]]:
    """Each raw feature with the positions of the transformed columns that come from it."""
    if not isinstance(preprocess, ColumnTransformer):
        steps = getattr(preprocess, "steps", [])
        preprocess = next((s for _, s in steps if isinstance(s, ColumnTransformer)), None)
        if preprocess is None:
            raise ModelError("explain: the pipeline has no column transformer to map features")
    groups: list[tuple[str, list[int]]] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        where = preprocess.output_indices_[name]
        positions = list(range(where.start, where.stop))
        owners = _owners(transformer, list(columns))
        if len(owners) != len(positions):
            raise ModelError(
                f"explain: transformer {name!r} gives {len(positions)} columns, "
                f"mapped {len(owners)} back to raw features"
            )
        for raw in dict.fromkeys(owners):
            groups.append((raw, [p for p, o in zip(positions, owners, strict=True) if o == raw]))
    return groups


def _owners(transformer: Any, columns: list[str]) -> list[str]:
    """The raw column behind each output column of one transformer."""
    if transformer == "passthrough":
        return columns
    encoder = transformer[-1] if isinstance(transformer, Pipeline) else transformer
    if isinstance(encoder, OneHotEncoder):
        before = transformer[:-1] if isinstance(transformer, Pipeline) else None
        kept = list(before.get_feature_names_out(columns)) if before is not None else columns
        widths = [len(c) for c in encoder.categories_]
        drops = getattr(encoder, "drop_idx_", None)
        if drops is not None:
            widths = [w - (d is not None) for w, d in zip(widths, drops, strict=True)]
        return [raw for raw, width in zip(kept, widths, strict=True) for _ in range(width)]
    return [str(c) for c in transformer.get_feature_names_out(columns)]


def _dense(x: Any) -> np.ndarray:
    if hasattr(x, "toarray"):
        x = x.toarray()
    return np.asarray(x, dtype=np.float64)


def explain_rows(
    pipeline: Pipeline,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    classes: list[str],
    positive: str | None,
    agnostic: bool = True,
) -> Contributions:
    """SHAP contributions of ``rows`` per raw feature (``background``: training rows, sampled
    with a fixed seed, so the same rows always get the same numbers).

    ``agnostic`` allows the model-agnostic fallback: a few thousand predictions a row, and
    shap compiles its masking code (numba) on first use, ~10-25 s per process here.
    """
    preprocess, estimator = pipeline[:-1], pipeline[-1]
    x = _dense(preprocess.transform(rows))
    kind = type(estimator).__name__
    seed = 0
    backdrop = background.sample(min(len(background), 1000), random_state=seed)
    bg = _dense(preprocess.transform(backdrop))
    methods = {
        "tree": kind in TREE_MODELS,
        "linear": kind in LINEAR_MODELS,
        "permutation": agnostic,
    }
    reasons = [] if methods["tree"] or methods["linear"] else ["no tree or linear explainer"]
    for method in (m for m, fits in methods.items() if fits):
        try:
            raw, scale = _shap(method, estimator, x, bg, seed)
            explained = _orient(raw, scale, estimator, classes, positive)
            _check_additivity(explained, estimator, x, classes, positive)
        except (ValueError, TypeError, RuntimeError, ExplainError) as exc:
            reasons.append(f"{method}: {_first_line(exc)}")
            continue
        values, base, outputs, scale = explained
        groups = raw_feature_groups(preprocess)
        summed = np.stack([values[:, idx, :].sum(axis=1) for _, idx in groups], axis=1)
        explainer = method if not reasons else f"{method} ({'; '.join(reasons)})"
        return Contributions(summed, base, [g for g, _ in groups], outputs, scale, explainer)
    raise ExplainError(f"no SHAP explainer fits {kind} ({'; '.join(reasons)})")


def _shap(method: str, estimator: Any, x: np.ndarray, bg: np.ndarray, seed: int) -> tuple[Any, str]:
    """shap's Explanation of ``x`` and the scale it is on; trees explain their raw output
    (a margin, or a random forest's probability)."""
    shap = require_shap()
    if method == "tree":
        explainer = shap.TreeExplainer(estimator)
        result = explainer(x, check_additivity=False)  # checked below, against the model
        return result, str(getattr(explainer.model, "tree_output", None) or "margin")
    if method == "linear":
        return shap.LinearExplainer(estimator, bg)(x), "margin"
    small = bg[np.random.default_rng(seed).permutation(len(bg))[:BACKGROUND_ROWS]]
    predict = estimator.predict_proba if hasattr(estimator, "predict_proba") else estimator.predict
    masker = shap.maskers.Independent(small, max_samples=BACKGROUND_ROWS)
    explainer = shap.explainers.Permutation(predict, masker, seed=seed)
    result = explainer(x, max_evals=4 * x.shape[1] + 2, silent=True)  # two permutations
    return result, "probability" if hasattr(estimator, "predict_proba") else "value"


def _orient(
    result: Any, scale: str, estimator: Any, classes: list[str], positive: str | None
) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """(values rows x columns x outputs, base rows x outputs, output labels, scale)."""
    values = np.asarray(result.values, dtype=np.float64)
    base = np.asarray(result.base_values, dtype=np.float64)
    if base.ndim == 0:
        base = np.full(values.shape[0], float(base))
    if not classes:  # regression: one output, the value
        return values[:, :, None], base.reshape(-1, 1), ["value"], "value"
    fitted = [str(c) for c in getattr(estimator, "classes_", classes)]
    probability = scale == "probability"
    if values.ndim == 2:  # binary margin: log-odds of the second class
        if len(fitted) != 2:
            raise ExplainError(f"one output for {len(fitted)} classes")
        sign = -1.0 if positive == fitted[0] else 1.0
        label = positive or fitted[1]
        return sign * values[:, :, None], sign * base.reshape(-1, 1), [label], "log-odds"
    if len(fitted) == 2:  # probabilities of both classes: keep the positive one's
        column = fitted.index(positive) if positive in fitted else 1
        kept = values[:, :, column : column + 1], base[:, column : column + 1]
        return kept[0], kept[1], [fitted[column]], "probability" if probability else "log-odds"
    return values, base, fitted, "probability" if probability else "margin"


def model_output(
    estimator: Any, x: np.ndarray, classes: list[str], positive: str | None, scale: str
) -> np.ndarray:
    """The estimator's own output on ``scale``, shaped (rows, outputs) like ``_orient``'s."""
    if not classes:
        return np.asarray(estimator.predict(x), dtype=np.float64).reshape(-1, 1)
    fitted = [str(c) for c in estimator.classes_]
    if scale == "probability":
        out = np.asarray(estimator.predict_proba(x), dtype=np.float64)
    else:
        out = np.asarray(_margin(estimator, x), dtype=np.float64)
    if len(fitted) == 2:
        if out.ndim == 2 and out.shape[1] == 2:
            return out[:, [fitted.index(positive) if positive in fitted else 1]]
        sign = -1.0 if positive == fitted[0] else 1.0
        return sign * out.reshape(-1, 1)
    return out


def _margin(estimator: Any, x: np.ndarray) -> np.ndarray:
    """The raw score before the link (log-odds, or per-class margins)."""
    name = type(estimator).__name__
    if name.startswith("LGBM"):
        return np.asarray(estimator.predict(x, raw_score=True))
    if name.startswith("XGB"):
        import xgboost

        return np.asarray(estimator.get_booster().predict(xgboost.DMatrix(x), output_margin=True))
    return np.asarray(estimator.decision_function(x))


def _check_additivity(
    explained: tuple[np.ndarray, np.ndarray, list[str], str],
    estimator: Any,
    x: np.ndarray,
    classes: list[str],
    positive: str | None,
) -> None:
    values, base, _, scale = explained
    expected = model_output(estimator, x, classes, positive, scale)
    total = base + values.sum(axis=1)
    if total.shape != expected.shape:
        raise ExplainError(f"explains {total.shape[1]} outputs, the model has {expected.shape}")
    spread = max(float(np.ptp(expected)), 1.0)
    error = float(np.abs(total - expected).max()) if total.size else 0.0
    if not np.isfinite(total).all() or error > ADDITIVITY_TOLERANCE * spread:
        raise ExplainError(f"contributions miss the model's output by up to {error:.3g}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
