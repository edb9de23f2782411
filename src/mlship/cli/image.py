"""``mlship image build``: the scoring image with a model baked in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlship.cli.common import (
    DEFAULT_CONFIG,
    DEFAULT_ENV_DIR,
    ConfigOpt,
    EnvDirOpt,
    EnvOpt,
    guarded,
    out,
    registry_uri_for,
)

app = typer.Typer(help="Build the scoring image for a model.", no_args_is_help=True)


@app.command("build")
def build(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Saved model dir, models:/NAME@ALIAS or models:/NAME/VERSION."
        ),
    ],
    tag: Annotated[str | None, typer.Option(help="Image tag (default NAME:VERSION).")] = None,
    base_image: Annotated[
        str | None, typer.Option(help="Override the Dockerfile's BASE_IMAGE.")
    ] = None,
    context: Annotated[Path, typer.Option(help="Build context (the repo root).")] = Path(),
    dockerfile: Annotated[Path, typer.Option("--file", "-f", help="Dockerfile.")] = Path(
        "Dockerfile"
    ),
    tracking_uri: Annotated[
        str | None, typer.Option(help="Registry for models:/ URIs (default: from config).")
    ] = None,
    runtime: Annotated[
        str, typer.Option(help="auto (onnx when the model passed parity), onnx or sklearn.")
    ] = "auto",
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Build the scoring image with a saved or registered model baked in."""

    def body() -> None:
        from mlship.deploy.image import BuildRequest
        from mlship.deploy.image import build as do_build
        from mlship.registry.tracking import quiet_mlflow

        uri = registry_uri_for(model, tracking_uri, config, env, env_dir)
        quiet_mlflow()
        request = BuildRequest(
            source=model,
            context=context,
            dockerfile=dockerfile,
            tag=tag,
            base_image=base_image,
            tracking_uri=uri,
            runtime=runtime,
        )
        result = do_build(request)
        out.print(
            f"built {result.tag} ({result.name} v{result.version}, run {result.run_id}, "
            f"runtime {result.runtime})",
            highlight=False,
        )

    guarded(body)
