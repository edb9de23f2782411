"""Helpers for the training tests: OJ data cut off mid-row, and the PID of a finished process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import OJ_CSV


def cut_mid_row(source: Path, dest: Path) -> tuple[int, int]:
    """Write ``source`` cut in the middle of a row at about half its size, as a killed copy would.

    Returns the cut line's number and how many fields it has left.
    """
    data = source.read_bytes()
    cut = len(data) // 2
    while data[cut - 1 : cut + 1].count(b"\n") or data[cut - 1 : cut] == b",":
        cut += 1  # inside a value: neither at a line's edge nor just after a comma
    dest.write_bytes(data[:cut])
    last = data[:cut].rsplit(b"\n", 1)[1]
    return data[:cut].count(b"\n") + 1, last.count(b",") + 1


@pytest.fixture
def cut_csv(tmp_path: Path) -> tuple[Path, int, int]:
    path = tmp_path / "oj-cut.csv"
    line, fields = cut_mid_row(OJ_CSV, path)
    return path, line, fields


@pytest.fixture(scope="session")
def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
