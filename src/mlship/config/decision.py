"""The ``decision`` section (how a binary classifier turns P(positive_class) into a label) and
the checks across sections that calibration and thresholds need (the task, the engine).

Kept beside ``schema`` so that file stays small; ``Settings`` validates them after every layer
is merged, so an error names the final key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class _Closed(BaseModel):
    """As ``schema._Strict``: frozen, and a typo in a key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DecisionCost(_Closed):
    false_positive: float = Field(
        gt=0, description="Cost of one false positive (a negative row labelled positive)."
    )
    false_negative: float = Field(
        gt=0, description="Cost of one false negative (a positive row labelled negative)."
    )


class DecisionConfig(_Closed):
    """How a binary classifier turns P(positive_class) into a label (docs/calibration.md)."""

    threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Binary classifiers: label positive_class iff P(positive_class) >= this. "
        "Null (and no optimize): the most probable class, as before thresholds existed.",
    )
    optimize: Literal["f1", "youden", "cost"] | None = Field(
        default=None,
        description="Choose the threshold on out-of-fold predictions of the training part "
        "(never the holdout): f1 (of positive_class), youden (TPR - FPR) or cost "
        "(decision.cost, lowest total).",
    )
    cost: DecisionCost | None = Field(
        default=None, description="optimize cost only: {false_positive: x, false_negative: y}."
    )
    cv_folds: int | None = Field(
        default=None,
        ge=2,
        description="optimize only: folds of the out-of-fold predictions. Null: split.cv_folds "
        "when it is on, else 5 (the same folds split.strategy makes).",
    )

    @model_validator(mode="after")
    def _shape(self) -> DecisionConfig:
        if self.threshold is not None and self.optimize is not None:
            raise ValueError("give decision.threshold or decision.optimize, not both")
        if self.optimize == "cost" and self.cost is None:
            raise ValueError(
                "decision.optimize cost needs decision.cost: {false_positive: x, false_negative: y}"
            )
        if self.cost is not None and self.optimize != "cost":
            raise ValueError("decision.cost is used only with decision.optimize: cost")
        if self.cv_folds is not None and self.optimize is None:
            raise ValueError("decision.cv_folds is used only with decision.optimize")
        return self

    @property
    def key(self) -> str | None:
        """The key that asks for a threshold (for errors), or None when labels are argmax."""
        if self.threshold is not None:
            return "decision.threshold"
        return "decision.optimize" if self.optimize is not None else None


def check_calibration(calibration: str, task: Any) -> None:
    """``model.calibration`` calibrates class probabilities: a regressor has none."""
    if calibration != "none" and task == "regression":
        raise ValueError("model.calibration calibrates class probabilities; task is regression")


def check_decision(decision: DecisionConfig, task: Any, model: Any) -> None:
    """A threshold is a binary classifier's; its out-of-fold fits run in this process."""
    if decision.key and task == "regression":
        raise ValueError(f"{decision.key} needs a binary classifier; task is regression")
    if decision.optimize and model is not None and model.engine == "dask":
        raise ValueError("decision.optimize needs model.engine local (its CV fits run here)")


class CrossChecked(_Closed):
    """``Settings``' checks across sections; a field validator sees the fields declared before
    its own (``task`` comes first), and its error names the section."""

    @field_validator("model", check_fields=False)
    @classmethod
    def _calibrated_classifier(cls, model: Any, info: ValidationInfo) -> Any:
        check_calibration(model.calibration, info.data.get("task"))
        return model

    @field_validator("decision", check_fields=False)
    @classmethod
    def _binary_decision(cls, decision: DecisionConfig, info: ValidationInfo) -> DecisionConfig:
        check_decision(decision, info.data.get("task"), info.data.get("model"))
        return decision
