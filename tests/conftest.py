"""Shared fixtures: the repo root, an isolated working dir, and an in-process CLI runner.

Training writes relative paths (sqlite:///mlruns.db, ./mlruns artifacts, models/...), so each
test that trains runs with its own temporary working directory and absolute config paths.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
OJ_CSV = ROOT / "data" / "oj.csv"
BASE_CONFIG = ROOT / "configs" / "base.yaml"
ENV_DIR = ROOT / "configs" / "env"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str) -> CliResult:
    """Invoke ``mlship`` in-process (no interpreter start-up per call)."""
    from mlship.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working dir; MLFLOW_TRACKING_URI unset so the embedded default applies."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLSHIP_ENV", raising=False)
    return tmp_path


def train_args(workdir: Path, *overrides: str, config: Path = BASE_CONFIG) -> list[str]:
    """``mlship train`` arguments that keep every output inside ``workdir``."""
    return [
        "train",
        "--config",
        str(config),
        "--env-dir",
        str(ENV_DIR),
        f"data.uri={ROOT / 'data' / _data_name(config)}",
        f"output.model_dir={workdir / 'model'}",
        f"tracking.uri=sqlite:///{workdir / 'mlruns.db'}",
        "explain.enabled=false",  # ~10 s a training; trained_oj and the explain tests turn it on
        *overrides,
    ]


def _data_name(config: Path) -> str:
    import yaml

    return Path(yaml.safe_load(config.read_text())["data"]["uri"]).name


@pytest.fixture(scope="session")
def trained_oj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default OJ model trained once per session into its own working dir.

    Yields that dir: ``model/`` is the saved model, ``mlruns.db`` the tracking store.
    """
    work = tmp_path_factory.mktemp("trained-oj")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = run_cli(*train_args(work, "explain.enabled=true"))
        assert result.exit_code == 0, result.output
    return work


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs a trained model is slow (it trains one per session): mark it so."""
    for item in items:
        if "trained_oj" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


_DANGLING_AT_START = pytest.StashKey[set[str] | None]()
_SCORER_LABEL = "ai.mlship.model.name"


def _dangling_images() -> set[str] | None:
    """IDs of the engine's untagged scoring images (the Dockerfile labels every one with its
    model), or None where there is no engine to ask."""
    if shutil.which("docker") is None:
        return None
    try:
        listed = subprocess.run(
            ["docker", "images", "--filter", "dangling=true", "--filter",
             f"label={_SCORER_LABEL}", "--quiet", "--no-trunc"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return set(listed.stdout.split()) if listed.returncode == 0 else None


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_DANGLING_AT_START] = _dangling_images()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove the scoring images this session left untagged (a fixed tag such as the stack's
    scorer, rebuilt, leaves its previous image behind): ~0.5 GB a build, which on a machine
    that runs ``.ci/run`` again and again fills the disk. Images untagged before the session
    are not this session's to remove, and ``rmi`` without ``-f`` leaves any a container uses.
    Cleanup never fails the session."""
    before = session.config.stash.get(_DANGLING_AT_START, None)
    after = _dangling_images()
    if before is None or after is None or not (after - before):
        return
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            ["docker", "rmi", *sorted(after - before)],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
