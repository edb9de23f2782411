"""Throwaway venvs for the clients and peers that are not our dependencies.

uv makes and fills one in seconds from its cache (pip took 100 s for the platform clients on a
warm cache); without uv on PATH, the standard library's venv and pip do the same, slower.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def create(root: Path, env: Mapping[str, str], timeout: float = 120) -> Path:
    """A fresh venv at ``root`` on this interpreter's Python; its ``python``."""
    uv = shutil.which("uv")
    command = [uv, "venv", "-q", "-p", sys.executable, str(root)] if uv else [
        sys.executable, "-m", "venv", str(root)
    ]  # fmt: skip
    subprocess.run(command, check=True, timeout=timeout, env=dict(env))
    return root / "bin" / "python"


def install_command(python: Path) -> list[str]:
    """The command that installs into the venv of ``python`` (arguments follow)."""
    uv = shutil.which("uv")
    if uv:
        return [uv, "pip", "install", "-q", "--python", str(python)]
    return [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
