"""``mlship promote``: move a registry alias, optionally gated on a metric."""

from __future__ import annotations

from typing import Annotated

import typer

from mlship.cli.common import (
    DEFAULT_CONFIG,
    DEFAULT_ENV_DIR,
    ConfigOpt,
    EnvDirOpt,
    EnvOpt,
    guarded,
    load_settings,
    out,
)
from mlship.errors import MlshipError


def promote(
    to: Annotated[str, typer.Option("--to", help="Alias to move, e.g. champion.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Registered model (default: from config).")
    ] = None,
    version: Annotated[str | None, typer.Option("--version", help="Version number.")] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="Promote the version holding this alias.")
    ] = None,
    if_better: Annotated[
        str | None,
        typer.Option("--if-better", help="Only if this holdout metric beats the alias holder."),
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="Default: from config.")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Move a registry alias (e.g. candidate -> champion), optionally gated on a metric."""

    def body() -> None:
        from mlship.registry.promotion import promote as do_promote
        from mlship.registry.tracking import quiet_mlflow

        if (version is None) == (alias is None):
            raise MlshipError("give exactly one of --version or --alias")
        model_name, uri = name, tracking_uri
        if model_name is None or uri is None:
            settings = load_settings(config, env, [], env_dir)
            model_name = model_name or settings.tracking.registered_model
            uri = uri or settings.tracking.uri
        quiet_mlflow()
        result = do_promote(uri, model_name, str(version or alias), to, if_better)
        if result.promoted:
            out.print(f"promoted {model_name} v{result.version} to @{to}: {result.reason}")
        else:
            out.print(f"not promoted: {result.reason}")

    guarded(body)
