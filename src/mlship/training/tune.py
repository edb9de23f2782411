"""Hyperparameter search with Optuna: CV on the training part only, one MLflow run per trial.

The objective is ``tune.metric`` averaged over ``tune.cv_folds`` folds of the training part
(the folds follow ``split.strategy``); the holdout is never seen. After each fold the running
mean is reported, so the median pruner stops a trial that is worse than the median of earlier
trials at the same fold. A seeded TPE sampler makes a search reproducible (without a timeout).
Each trial is a nested run under one parent run; the parent gets the study's plots.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlship.config import ParamRange, Settings, Task, deep_merge
from mlship.errors import ConfigError, ModelError
from mlship.registry.promotion import LOWER_IS_BETTER
from mlship.registry.tracking import check_store, client, git_state
from mlship.storage import owned_prefix
from mlship.training import job, splits
from mlship.training.cv import fold_metrics, summarise
from mlship.training.output import Progress
from mlship.training.tune_report import log_study, write_overlay

DEFAULT_STORAGE = "sqlite:///optuna.db"
Direction = Literal["minimize", "maximize"]
METRICS = {
    Task.classification: (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
    ),
    Task.regression: ("rmse", "mae", "r2"),
}
OnTrial = Callable[[int, float | None], None]  # trials finished in this call, best so far


@dataclass(frozen=True)
class TuneRequest:
    settings: Settings
    trials: int
    timeout: float | None
    seed: int
    storage: str
    study_name: str


@dataclass(frozen=True)
class TuneResult:
    params: dict[str, Any]
    value: float
    metric: str
    direction: str
    trials_run: int
    trials_total: int
    pruned: int
    parent_run_id: str
    overlay: Path
    study_name: str
    storage: str


def objective_metric(settings: Settings) -> tuple[str, Direction]:
    """The metric searched on and its direction."""
    metric = settings.tune.metric or ("roc_auc" if settings.task is Task.classification else "rmse")
    return metric, "minimize" if metric in LOWER_IS_BETTER else "maximize"


def request_for(
    settings: Settings, trials: int | None, timeout: float | None, seed: int | None
) -> TuneRequest:
    """Flags win over ``tune.*``; the study storage must not be MLflow's own file."""
    cfg = settings.tune
    space_of(settings)  # a missing space or an unknown metric fails before any data is read
    metric, _ = objective_metric(settings)
    if metric not in METRICS[settings.task]:
        known = ", ".join(METRICS[settings.task])
        raise ConfigError(f"tune.metric {metric!r}: not a {settings.task.value} metric ({known})")
    storage = cfg.storage or DEFAULT_STORAGE
    if storage == settings.tracking.uri:
        raise ConfigError(
            f"tune.storage {storage!r} is the tracking store: Optuna and MLflow both keep an "
            "alembic_version table there; give the study its own file"
        )
    return TuneRequest(
        settings=settings,
        trials=trials or cfg.trials,
        timeout=timeout if timeout is not None else cfg.timeout,
        seed=cfg.seed if seed is None else seed,
        storage=storage,
        study_name=cfg.study_name or f"{settings.tracking.experiment}-{settings.model.name}",
    )


def space_of(settings: Settings) -> dict[str, ParamRange]:
    name = settings.model.name
    space = settings.tune.space.get(name)
    if not space:
        known = ", ".join(sorted(settings.tune.space)) or "none"
        raise ConfigError(f"tune.space.{name}: no search space for {name!r} (spaces: {known})")
    return space


def suggest(trial: Any, space: dict[str, ParamRange]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, r in space.items():
        if r.choices is not None:
            params[name] = trial.suggest_categorical(name, r.choices)
        elif r.integer:
            params[name] = trial.suggest_int(name, int(r.low or 0), int(r.high or 0), log=r.log)
        else:
            params[name] = trial.suggest_float(
                name, float(r.low or 0), float(r.high or 0), log=r.log
            )
    return params


def with_params(settings: Settings, params: dict[str, Any], **tags: str) -> Settings:
    """The settings with ``params`` over ``model.params.<model.name>`` (and extra run tags)."""
    patch: dict[str, Any] = {"model": {"params": {settings.model.name: params}}}
    if tags:
        patch["tracking"] = {"tags": tags}
    return Settings.model_validate(deep_merge(settings.model_dump(), patch))


class _Objective:
    """One trial: suggest params, CV them with pruning, log a nested run."""

    def __init__(self, request: TuneRequest, data: job.Prepared, parent: tuple[str, str]) -> None:
        self.request, self.data = request, data
        self.experiment_id, self.parent_id = parent
        self.settings = request.settings
        self.metric, _ = objective_metric(self.settings)
        self.space = space_of(self.settings)
        self.folds = splits.cv_folds(
            data.parts, self.settings.split, self.settings.task, self.settings.tune.cv_folds
        )
        self.mlflow = client(self.settings.tracking.uri)

    def __call__(self, trial: Any) -> float:
        import optuna

        params = suggest(trial, self.space)
        running: list[float] = []
        scores: list[dict[str, float]] = []
        state = "FAILED"

        def after_fold(k: int, fold: dict[str, float]) -> None:
            if self.metric not in fold:
                raise ConfigError(f"tune.metric {self.metric!r}: not one of {', '.join(fold)}")
            scores.append(fold)
            running.append(fold[self.metric])
            trial.report(float(np.mean(running)), k)
            if self.settings.tune.pruning and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after fold {k + 1}")

        try:
            fold_metrics(with_params(self.settings, params), self.data, self.folds, after_fold)
            state = "COMPLETE"
            return float(np.mean(running))
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            self._log(trial.number, params, scores, state)

    def _log(
        self, number: int, params: dict[str, Any], scores: list[dict[str, float]], state: str
    ) -> None:
        from mlflow.entities import Metric, Param

        algo = self.settings.model.name
        tags = {"mlflow.parentRunId": self.parent_id, "mlflow.runName": f"trial-{number}",
                "optuna.trial": str(number), "optuna.state": state,
                "mlship.algorithm": algo}  # fmt: skip
        run = self.mlflow.create_run(self.experiment_id, tags=tags)
        stamp = run.info.start_time
        metrics = [Metric(k, v, stamp, 0) for k, v in (summarise(scores) if scores else {}).items()]
        metrics += [
            Metric(f"fold_{self.metric}", s[self.metric], stamp, i) for i, s in enumerate(scores)
        ]
        logged = [Param(f"model.params.{algo}.{k}", str(v)[:6000]) for k, v in params.items()]
        self.mlflow.log_batch(run.info.run_id, metrics=metrics, params=logged)
        self.mlflow.set_terminated(run.info.run_id, "FINISHED" if state != "FAILED" else "FAILED")


def _study(request: TuneRequest, direction: Direction) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            storage=request.storage,
            study_name=request.study_name,
            direction=direction,
            sampler=optuna.samplers.TPESampler(seed=request.seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
            load_if_exists=True,
        )
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"tune.storage {request.storage!r}: cannot open the study: {reason}"
        ) from None
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"study {request.study_name!r} {study.direction.name.lower()}s; tune.metric wants "
            f"{direction} (give another --study-name)"
        )
    return study


def _parent_run(settings: Settings, request: TuneRequest) -> tuple[str, str]:
    check_store(settings.tracking.uri, settings.tracking.experiment)
    mlflow = client(settings.tracking.uri)
    experiment = mlflow.get_experiment_by_name(settings.tracking.experiment).experiment_id
    tags = {
        "mlflow.runName": f"tune-{settings.model.name}",
        "mlship.kind": "tune",
        "mlship.algorithm": settings.model.name,
        "optuna.study": request.study_name,
        "optuna.storage": request.storage,
        **git_state(),
        **settings.tracking.tags,
    }
    return experiment, mlflow.create_run(experiment, tags=tags).info.run_id


def run(request: TuneRequest, progress: Progress, on_trial: OnTrial) -> TuneResult:
    """Search, log, write the overlay; the caller trains with the result if asked."""
    import optuna

    settings = request.settings
    metric, direction = objective_metric(settings)
    data = job.prepare(settings, progress)
    study = _study(request, direction)
    before = len(study.trials)
    experiment, parent = _parent_run(settings, request)
    folds = settings.tune.cv_folds
    progress(f"searching {settings.model.name}: {request.trials} trials, {folds}-fold CV {metric}")

    def report(study: Any, _: Any) -> None:
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        on_trial(len(study.trials) - before, study.best_value if done else None)

    mlflow = client(settings.tracking.uri)
    try:
        objective = _Objective(request, data, (experiment, parent))
        study.optimize(objective, n_trials=request.trials, timeout=request.timeout,
                       catch=(ModelError,), callbacks=[report])  # fmt: skip
        best = _best(study)
    except BaseException:
        mlflow.set_terminated(parent, "FAILED")
        raise
    overlay = write_overlay(settings, best.params, best.value, request.study_name, metric)
    with tempfile.TemporaryDirectory(prefix=owned_prefix("mlship-tune")) as work:
        log_study(mlflow, parent, study, Path(work), (metric, best.params, best.value))
    mlflow.set_terminated(parent, "FINISHED")
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials[before:])
    return TuneResult(
        best.params, float(best.value), metric, direction, len(study.trials) - before,
        len(study.trials), pruned, parent, overlay, request.study_name, request.storage,
    )  # fmt: skip


def _best(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:
        failed = [t for t in study.trials if t.state.name == "FAIL"]
        why = failed[-1].system_attrs.get("fail_reason", "") if failed else ""
        raise ModelError(
            f"no trial of study {study.study_name!r} completed {why}".strip()
        ) from None
