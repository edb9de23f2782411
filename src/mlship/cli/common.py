"""What every command shares: consoles, the one-line error guard, config options."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from mlship.config import DEFAULT_CONFIG, DEFAULT_ENV_DIR
from mlship.errors import MlshipError

console = Console(stderr=True)
out = Console()
state: dict[str, bool] = {"debug": False}
T = TypeVar("T")

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="Base YAML config file.", show_default=True)
]
EnvOpt = Annotated[
    str | None,
    typer.Option("--env", "-e", envvar="MLSHIP_ENV", help="Overlay configs/env/<ENV>.yaml."),
]
EnvDirOpt = Annotated[Path, typer.Option("--env-dir", help="Folder of environment overlays.")]
OverridesArg = Annotated[
    list[str] | None, typer.Argument(help="Overrides as key.sub=value (YAML values).")
]
__all__ = ["DEFAULT_CONFIG", "DEFAULT_ENV_DIR"]


@contextmanager
def progress(first: str = "starting") -> Iterator[Callable[[str], None]]:
    """A spinner showing the latest step, each step also logged as a line; yields ``step``.

    Messages quote data (column names, labels): they are never read as markup. Warnings
    (``warning: ...``) are yellow.
    """
    with console.status(first, spinner="dots") as status:

        def step(message: str) -> None:
            style = "yellow" if message.startswith("warning: ") else None
            console.log(message, markup=False, highlight=False, style=style)
            status.update(escape(message))

        yield step


def error_line(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """A plain line on stderr, printed as given (no markup, no highlighting)."""
    console.print(message, highlight=False, markup=False, soft_wrap=True)


def guarded(action: Callable[[], T]) -> T:
    """Run a command body; our errors become one red line (plus a few located ones) and exit 1."""
    try:
        return action()
    except MlshipError as exc:
        if state["debug"]:
            raise
        error_line(str(exc))
        for line in also_lines(exc):
            note(f"  also: {line}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None


def also_lines(exc: MlshipError, most: int = 4) -> list[str]:
    """Up to ``most`` problems after the first, as lines (located in files where known)."""
    located = getattr(exc, "located", None)
    if located:
        return [p.describe() for p in located[1 : most + 1]]
    problems = getattr(exc, "problems", None) or []
    return [p.line() for p in problems[1 : most + 1]]


def load_settings(config: Path, env: str | None, overrides: list[str] | None, env_dir: Path) -> Any:
    from mlship.config import load_settings as load

    return load(config, env, overrides or [], env_dir)


def tracking_for(
    tracking_uri: str | None,
    experiment: str | None,
    config: Path,
    env: str | None,
    env_dir: Path,
    overrides: list[str] | None = None,
    *,
    read_config: bool = False,
) -> tuple[tuple[str, str], Any]:
    """The tracking URI and experiment a run is logged to, with the settings read for them.

    Each is the flag where given, else the config's. The config is read only when one is
    missing or ``read_config`` says so; the settings are None when it was not read.
    """
    if tracking_uri is not None and experiment is not None and not read_config:
        return (tracking_uri, experiment), None
    settings = load_settings(config, env, overrides, env_dir)
    tracking = settings.tracking
    return (tracking_uri or tracking.uri, experiment or tracking.experiment), settings


def registry_uri_for(
    model: str, tracking_uri: str | None, config: Path, env: str | None, env_dir: Path
) -> str:
    """The tracking URI a ``models:/...`` source is read from: the flag, else the config's;
    empty for a model dir (nothing to ask)."""
    from mlship.registry.tracking import quiet_mlflow
    from mlship.registry.uri import registry_ref

    if tracking_uri:
        return tracking_uri
    if registry_ref(model) is None:
        return ""
    quiet_mlflow()
    uri: str = load_settings(config, env, [], env_dir).tracking.uri
    return uri
