"""``mlship bundle``: the offline deployment bundle for a plain Linux VM (systemd, no Docker)."""

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
    note,
    out,
    registry_uri_for,
)


def bundle(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Saved model dir, its URI (gs://, s3://, ...), models:/NAME@ALIAS or "
            "models:/NAME/VERSION.",
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle, FILE.tar.gz.")],
    platform: Annotated[
        str,
        typer.Option(help="Target manylinux platform tag (glibc and CPU), e.g. on a Mac."),
    ] = "manylinux_2_28_x86_64",
    python_version: Annotated[
        str, typer.Option("--python-version", help="Target CPython X.Y (the VM's python3).")
    ] = "3.11",
    runtime: Annotated[
        str, typer.Option(help="auto (onnx when the model passed parity), onnx or sklearn.")
    ] = "auto",
    port: Annotated[int, typer.Option(help="Port the installed service listens on.")] = 8888,
    workers: Annotated[int, typer.Option(help="uvicorn workers (one per vCPU).")] = 1,
    memory_max: Annotated[
        str, typer.Option(help="systemd MemoryMax of the service, e.g. 1G.")
    ] = "1G",
    requirements: Annotated[
        Path | None,
        typer.Option(help="Folder of serve-onnx.txt / serve-sklearn.txt (default: checkout's)."),
    ] = None,
    wheel: Annotated[
        Path | None, typer.Option(help="The mlship wheel to ship (default: built from source).")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="Registry for models:/ URIs (default: from config).")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    env: EnvOpt = None,
    env_dir: EnvDirOpt = DEFAULT_ENV_DIR,
) -> None:
    """Build an offline bundle: model, wheelhouse, install.sh and a hardened systemd unit."""

    def body() -> None:
        import time

        from mlship.deploy.bundle import BundleRequest, Service, Target, build

        uri = registry_uri_for(model, tracking_uri, config, env, env_dir)
        request = BundleRequest(
            source=model,
            output=output,
            tracking_uri=uri,
            runtime=runtime,
            target=Target(platform, python_version),
            service=Service(port=port, workers=workers, memory_max=memory_max),
            requirements_dir=requirements,
            wheel=wheel,
        )
        start = time.monotonic()
        result = build(request, progress=note)
        out.print(
            f"bundled {result.name} v{result.version} (runtime {result.runtime}, "
            f"{result.wheels} wheels for {result.target.platform} / CPython "
            f"{result.target.python}) -> {result.path} "
            f"({result.size_bytes / 1e6:.1f} MB, {time.monotonic() - start:.0f} s)",
            highlight=False,
            soft_wrap=True,
        )

    guarded(body)
