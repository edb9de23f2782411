"""The wheelhouse of a bundle: which pinned wheels a target host needs, and fetching them.

The pins are ``requirements/serve-<runtime>.txt`` (the hash-pinned export of ``uv.lock``).
Their markers are evaluated for the *target* (Linux, the given CPython), not for the machine
building the bundle, and ``pip download`` fetches binary wheels for the target's platform
tags, so a bundle for a Linux VM can be built on a Mac.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mlship.errors import MlshipError

DEFAULT_PLATFORM = "manylinux_2_28_x86_64"  # glibc >= 2.28: Debian 10+, Ubuntu 18.10+, RHEL 8+
DEFAULT_PYTHON = "3.11"
REQUIREMENTS = {"onnx": "serve-onnx.txt", "sklearn": "serve-sklearn.txt"}
_PLATFORM = re.compile(r"^manylinux_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>[a-z0-9_]+)$")
# Legacy manylinux names and the glibc version each stands for (PEP 600).
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
_LEGACY_ARCHES: dict[str, set[str] | None] = {  # None: every architecture
    "manylinux2014": None,
    "manylinux2010": {"x86_64", "i686"},
    "manylinux1": {"x86_64", "i686"},
}
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


class BundleError(MlshipError):
    """The bundle cannot be built as asked."""


@dataclass(frozen=True)
class Target:
    """Where the bundle will run: a manylinux platform tag and a CPython ``X.Y``."""

    platform: str = DEFAULT_PLATFORM
    python: str = DEFAULT_PYTHON

    def __post_init__(self) -> None:
        if not _PLATFORM.match(self.platform):
            raise BundleError(
                f"--platform {self.platform!r}: give a manylinux tag such as "
                f"{DEFAULT_PLATFORM} or manylinux_2_28_aarch64"
            )
        if not re.fullmatch(r"3\.\d{1,2}", self.python):
            raise BundleError(f"--python-version {self.python!r}: give X.Y, e.g. 3.11")

    def _parts(self) -> tuple[int, int, str]:
        match = _PLATFORM.match(self.platform)
        assert match is not None  # checked in __post_init__
        return int(match["major"]), int(match["minor"]), match["arch"]

    def platform_tags(self) -> list[str]:
        """Every manylinux tag a host with this glibc accepts, newest first.

        ``pip download --platform`` matches tags literally (pip < 24 does not expand them),
        so a wheel published only as ``manylinux2014_x86_64`` needs that name listed too.
        """
        major, minor, arch = self._parts()
        tags: list[str] = []
        for glibc_minor in range(minor, 4, -1):
            tags.append(f"manylinux_{major}_{glibc_minor}_{arch}")
            legacy = _LEGACY.get((major, glibc_minor))
            arches = _LEGACY_ARCHES.get(legacy or "", set())
            if legacy and (arches is None or arch in arches):
                tags.append(f"{legacy}_{arch}")
        return tags

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values on the target host, not on the machine building the bundle."""
        return {
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "implementation_version": f"{self.python}.0",
            "python_version": self.python,
            "python_full_version": f"{self.python}.0",
            "os_name": "posix",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": self._parts()[2],
            "platform_release": "",
            "platform_version": "",
            "extra": "",
        }

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")


@dataclass(frozen=True)
class Pin:
    name: str
    line: str  # "name==version --hash=sha256:... --hash=sha256:..." (no marker)


def target_pins(text: str, target: Target) -> list[Pin]:
    """The hash-pinned requirements in ``text`` (a lock export) that apply on ``target``."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging comes with the train extra's tools
        raise BundleError(
            "mlship bundle needs the 'packaging' library (pip install packaging)"
        ) from None

    environment = target.marker_environment()
    pins: list[Pin] = []
    for entry in requirement_entries(text):
        spec, _, hashes = entry.partition(" --hash")
        try:
            requirement = Requirement(spec.strip())
        except InvalidRequirement as exc:
            raise BundleError(f"requirements: cannot read {spec.strip()!r}: {exc}") from None
        exact = [s.version for s in requirement.specifier if s.operator == "=="]
        found = _HASH.findall("--hash" + hashes)
        if len(exact) != 1 or not found:
            raise BundleError(f"requirements: {requirement.name} is not pinned with == and hashes")
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        pins.append(Pin(requirement.name, f"{requirement.name}=={exact[0]} {' '.join(found)}"))
    return pins


def requirement_entries(text: str) -> Iterable[str]:
    """Entries of a requirements file: continuation lines joined, comments dropped."""
    current: list[str] = []
    for raw in text.splitlines():
        line = "" if raw.lstrip().startswith("#") else raw.split(" #", 1)[0].strip()
        if line:
            current.append(line.removesuffix("\\").strip())
            if line.endswith("\\"):
                continue
        if current:
            yield " ".join(current)
            current = []
    if current:
        yield " ".join(current)


def source_root() -> Path | None:
    """The source checkout mlship runs from (``pyproject.toml`` beside ``src/``), if any."""
    root = Path(__file__).resolve().parents[3]  # src/mlship/deploy/<this> -> the repo
    if (root / "pyproject.toml").is_file() and (root / "src" / "mlship").is_dir():
        return root
    return None


def requirements_file(runtime: str, directory: Path | None) -> Path:
    base = directory or ((source_root() or Path.cwd()) / "requirements")
    path = base / REQUIREMENTS[runtime]
    if not path.is_file():
        raise BundleError(
            f"{path} not found: run from a source checkout or pass --requirements DIR "
            "(the folder with serve-onnx.txt and serve-sklearn.txt; `make requirements`)"
        )
    return path


def pip_command() -> list[str]:
    """A pip to download with: this interpreter's, else ``pip3`` / ``pip`` on PATH."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise BundleError("pip is needed to download the wheelhouse (python3 -m pip, or pip on PATH)")


def download_wheels(pins: list[Pin], wheelhouse: Path, target: Target) -> None:
    """``pip download`` binary wheels of exactly ``pins`` (hash-checked) for ``target``."""
    pip = pip_command()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    spec = wheelhouse.parent / f".download-{uuid.uuid4().hex[:8]}.txt"
    spec.write_text("".join(f"{p.line}\n" for p in pins))
    platforms = [arg for tag in target.platform_tags() for arg in ("--platform", tag)]
    common = [
        "download", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--only-binary=:all:", *platforms, "--python-version", target.python,
        "--implementation", "cp", "--abi", target.abi, "--abi", "abi3", "--abi", "none",
        "--dest", str(wheelhouse),
    ]  # fmt: skip
    try:
        run([*pip, *common, "--require-hashes", "-r", str(spec)], "downloading the wheelhouse")
        version = re.match(r"pip (\S+)", run([*pip, "--version"], "asking pip its version"))
        run([*pip, *common, f"pip=={version[1] if version else '24.3.1'}"], "downloading pip")
    finally:
        spec.unlink(missing_ok=True)


def mlship_wheel(given: Path | None, scratch: Path) -> Path:
    """The mlship wheel: ``given``, else built from the source checkout (uv, else pip)."""
    if given is not None:
        if not re.match(r"mlship-[^-]+-.*\.whl$", given.name) or not given.is_file():
            raise BundleError(f"--wheel {given}: not an mlship wheel file")
        return given
    root = source_root()
    if root is None:
        raise BundleError("not running from a source checkout: pass --wheel mlship-*.whl")
    uv = shutil.which("uv")
    cmd = (
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(scratch), str(root)]
        if uv
        else [*pip_command(), "wheel", "--no-deps", "--quiet", "-w", str(scratch), str(root)]
    )
    run(cmd, "building the mlship wheel")
    built = sorted(scratch.glob("mlship-*.whl"))
    if not built:
        raise BundleError(f"building the mlship wheel left nothing in {scratch}")
    return built[-1]


def run(cmd: list[str], what: str) -> str:
    """Run ``cmd``; on failure a one-paragraph error with the tail of its output."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
        raise BundleError(f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n{tail}")
    return done.stdout
