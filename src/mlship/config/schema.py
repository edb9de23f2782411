"""The training settings' schema: strict, frozen, every key with a default and a description.

Validated once, after every layer is merged (``mlship.config.layers``), so an error names the
final key.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlship.config.decision import CrossChecked, DecisionConfig

DEFAULT_CONFIG = Path("configs/base.yaml")
DEFAULT_ENV_DIR = Path("configs/env")
DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"


class _Strict(BaseModel):
    """Frozen and closed: a typo in a key is an error, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Task(StrEnum):
    classification = "classification"
    regression = "regression"


class FeaturesConfig(_Strict):
    numeric: list[str] | None = Field(
        default=None,
        description="Numeric feature columns. Null: every column not listed elsewhere whose "
        "dtype is numeric.",
    )
    categorical: list[str] | None = Field(
        default=None,
        description="Categorical feature columns. Null: every non-numeric column not listed "
        "elsewhere. Listed numeric codes (store ids) are treated as categories.",
    )
    drop: list[str] = Field(
        default_factory=list, description="Columns to ignore (ids, leaks, duplicates)."
    )


class SampleConfig(_Strict):
    fraction: float | None = Field(
        default=None, gt=0, le=1, description="Keep this fraction of rows (seeded)."
    )
    rows: int | None = Field(default=None, gt=0, description="Keep at most this many rows.")
    seed: int = Field(default=42, description="Seed of the sample.")


class DataConfig(_Strict):
    uri: str = Field(
        description="Where the training table lives: a local path or any fsspec URI "
        "(s3://, gs://, abfs://, https://)."
    )
    format: Literal["auto", "csv", "parquet"] = Field(
        default="auto", description="File format; auto picks by extension."
    )
    target: str = Field(description="The column to predict.")
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    sample: SampleConfig | None = Field(
        default=None, description="Optional down-sampling before the split."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed to fsspec (e.g. endpoint_url for an S3-compatible store).",
    )


class SplitConfig(_Strict):
    strategy: Literal["random", "stratified", "time", "group"] = Field(
        default="stratified",
        description="How the holdout is chosen: random; stratified (by class; random for "
        "regression); time (the latest part by split.time_column is the holdout); group (no "
        "value of split.group_column in both parts).",
    )
    time_column: str | None = Field(
        default=None, description="strategy time: the column that orders rows in time."
    )
    group_column: str | None = Field(
        default=None, description="strategy group: rows sharing a value stay on one side."
    )
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Holdout fraction.")
    seed: int = Field(default=42, description="Seed of the split and of seeded estimators.")
    stratify: bool = Field(
        default=True,
        description="strategy stratified only: false makes it random (kept for older configs).",
    )
    cv_folds: int = Field(
        default=0, ge=0, description="k-fold cross-validation on the training part; 0 skips it."
    )

    @model_validator(mode="after")
    def _folds(self) -> SplitConfig:
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (off) or at least 2")
        if self.strategy == "time" and not self.time_column:
            raise ValueError("strategy time needs split.time_column")
        if self.strategy == "group" and not self.group_column:
            raise ValueError("strategy group needs split.group_column")
        return self


class DaskConfig(_Strict):
    address: str | None = Field(
        default=None,
        description="Scheduler of an existing Dask cluster (tcp://host:8786). Null: start a "
        "local cluster on this machine for the fit.",
    )
    workers: int = Field(default=2, ge=1, description="Workers of the local cluster.")
    threads_per_worker: int = Field(default=1, ge=1, description="Threads per local worker.")


class ModelConfig(_Strict):
    name: str = Field(
        default="logistic_regression",
        description="Estimator from the registry: logistic_regression, random_forest, "
        "hist_gradient_boosting, lightgbm, ridge.",
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Estimator keyword arguments per algorithm, e.g. params.lightgbm.num_leaves. "
        "Only the entry of model.name is used, so switching model.name keeps each "
        "algorithm's settings.",
    )

    engine: Literal["local", "dask"] = Field(
        default="local",
        description="Where the estimator is fitted: local (in this process) or dask (LightGBM "
        "across a Dask cluster; model.name must be lightgbm). The saved model is the same kind.",
    )
    dask: DaskConfig = Field(default_factory=DaskConfig, description="model.engine dask only.")
    calibration: Literal["none", "sigmoid", "isotonic"] = Field(
        default="none",
        description="Classifiers: wrap the estimator in CalibratedClassifierCV (sigmoid, or "
        "isotonic), cross-validated on the training part only (docs/calibration.md).",
    )
    calibration_folds: int = Field(
        default=5, ge=2, description="model.calibration only: CalibratedClassifierCV's folds."
    )

    @model_validator(mode="after")
    def _engine(self) -> ModelConfig:
        if self.engine == "dask" and self.name != "lightgbm":
            raise ValueError(
                f"model.engine dask trains lightgbm only (model.name is {self.name!r})"
            )
        if self.engine == "dask" and self.calibration != "none":
            raise ValueError("model.calibration needs model.engine local (dask fits one model)")
        return self

    def chosen_params(self) -> dict[str, Any]:
        """The keyword arguments of the selected algorithm."""
        return dict(self.params.get(self.name) or {})


class TrackingConfig(_Strict):
    uri: str = Field(
        default=DEFAULT_TRACKING_URI,
        description="MLflow tracking URI. Null or unset in the files: MLFLOW_TRACKING_URI if "
        f"set, else an embedded SQLite store ({DEFAULT_TRACKING_URI}); resolved before "
        "validation, so the effective URI is what `config show` prints and the run logs.",
    )
    experiment: str = Field(description="MLflow experiment name.")
    run_name: str | None = Field(default=None, description="Run name; null lets MLflow pick one.")
    registered_model: str = Field(description="Registry name; each run adds a version.")
    alias: str = Field(default="candidate", description="Alias set on each new version.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra run tags.")


class OutputConfig(_Strict):
    model_dir: Path = Field(
        description="Where the saved MLflow model directory is written (atomically)."
    )


class ParamRange(_Strict):
    """One hyperparameter's search range: ``low``/``high`` (ints give integers), or ``choices``."""

    low: int | float | None = Field(default=None, description="Lower bound (inclusive).")
    high: int | float | None = Field(default=None, description="Upper bound (inclusive).")
    log: bool = Field(default=False, description="Sample on a log scale (low > 0).")
    choices: list[Any] | None = Field(default=None, description="Values to choose from.")

    @model_validator(mode="after")
    def _shape(self) -> ParamRange:
        if self.choices is not None:
            if self.low is not None or self.high is not None or not self.choices:
                raise ValueError("give either non-empty choices or low and high, not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high, or choices")
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("log needs low > 0")
        return self

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


class TuneConfig(_Strict):
    metric: str | None = Field(
        default=None,
        description="CV metric the search optimises (a holdout metric name, e.g. roc_auc, "
        "log_loss, rmse). Null: roc_auc for classification, rmse for regression.",
    )
    cv_folds: int = Field(default=5, ge=2, description="Folds of the CV on the training part.")
    trials: int = Field(default=30, ge=1, description="Trials per `mlship tune` invocation.")
    timeout: float | None = Field(
        default=None, gt=0, description="Stop starting trials after this many seconds."
    )
    seed: int = Field(default=42, description="Seed of the sampler (TPE): same seed, same trials.")
    pruning: bool = Field(default=True, description="Median pruning after each fold.")
    storage: str | None = Field(
        default=None,
        description="Optuna storage URL. Null: sqlite:///optuna.db (its own file; MLflow's "
        "SQLite file cannot hold it, both keep an alembic_version table).",
    )
    study_name: str | None = Field(
        default=None,
        description="Study to create or resume. Null: <tracking.experiment>-<model.name>.",
    )
    overlay: Path = Field(
        default=Path("tuned.yaml"),
        description="Where the best params are written, as a config overlay.",
    )
    space: dict[str, dict[str, ParamRange]] = Field(
        default_factory=dict,
        description="Search space per algorithm: space.<algorithm>.<param>: {low, high, log} "
        "or {choices}. Params outside it keep their model.params value.",
    )


class ExplainConfig(_Strict):
    enabled: bool = Field(
        default=True, description="Log permutation importance and SHAP summaries with each run."
    )
    max_rows: int = Field(
        default=1000, ge=1, description="Holdout rows explained at most (a seeded sample beyond)."
    )
    permutation_repeats: int = Field(
        default=5, ge=1, description="Shuffles per feature in permutation importance (seeded)."
    )


class MonitorConfig(_Strict):
    psi_threshold: float = Field(
        default=0.2,
        gt=0,
        description="`mlship monitor`: a feature drifts when its population stability index "
        "against the training profile's bins is above this (0.1 moderate, 0.2 major shift).",
    )
    p_value: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="... and the chi-square test of the batch's bin counts against the "
        "profile's shares gives a p-value below this (guards small batches against noise).",
    )
    drift_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="`mlship monitor --fail-on-drift` exits 2 when at least this share of "
        "the features drifted.",
    )


class Settings(CrossChecked):
    """The whole training job, as validated after all layers are merged."""

    task: Task = Field(default=Task.classification, description="classification or regression.")
    positive_class: str | None = Field(
        default=None,
        description="Binary classification: the label scored as positive (ROC/PR curves, "
        "precision, recall). Null: the last label in sorted order.",
    )
    data: DataConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    tracking: TrackingConfig
    output: OutputConfig
