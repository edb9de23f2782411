"""``mlship config show|schema``: the resolved training config and its schema."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from mlship.cli.common import (
    DEFAULT_CONFIG,
    DEFAULT_ENV_DIR,
    ConfigOpt,
    EnvDirOpt,
    EnvOpt,
    OverridesArg,
    guarded,
    load_settings,
    out,
)

app = typer.Typer(help="Inspect the training configuration.", no_args_is_help=True)


@app.command("show")
def show(
    overrides: OverridesArg = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False,
) -> None:
    """Print the resolved, validated config (all layers and overrides applied)."""

    def body() -> None:
        from mlship.config import public_dump, settings_to_yaml

        settings = load_settings(config, env, overrides, env_dir)
        if as_json:
            out.print_json(json.dumps(public_dump(settings)))
        else:
            sys.stdout.write(settings_to_yaml(settings))

    guarded(body)


@app.command("schema")
def schema() -> None:
    """Print the config's JSON schema (every key, type, default and description)."""
    from mlship.config import Settings

    sys.stdout.write(json.dumps(Settings.model_json_schema(), indent=2) + "\n")
