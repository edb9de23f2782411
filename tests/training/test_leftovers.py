"""What a killed run leaves (temp dirs beside the model dir and in /tmp) is cleared by the next.

The killed runs here are real: a child process that SIGKILLs itself at the chosen moment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from mlship import storage
from mlship.errors import StorageError
from mlship.storage import (
    atomic_dir,
    check_writable,
    clean_beside,
    clean_temp_dirs,
    is_stale,
    owned_prefix,
    owner,
)
from mlship.training import output
from tests.conftest import ROOT

HOST = owner().rpartition("-")[0]


def hour_later(path: Path) -> float:
    """A moment more than the stale age after ``path`` last changed (not after import time:
    the suite may run for longer than the margin before this test does)."""
    return path.lstat().st_ctime + storage.STALE_AFTER_S + 60


pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and PIDs")


def killed(script: str, *args: str) -> None:
    """Run ``script`` in a child process that is expected to SIGKILL itself."""
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == -9, child.stderr


KILL_ON = """
    import os, signal, sys, tempfile
    from pathlib import Path
    from mlship import storage

    dest, moment = Path(sys.argv[1]), sys.argv[2]
    real = Path.rename

    def rename(self, target):
        if moment == "swap" and self.name.startswith(f".{dest.name}.tmp-"):
            os.kill(os.getpid(), signal.SIGKILL)  # the old model is aside, the new not in place
        return real(self, target)

    Path.rename = rename
    if moment == "work":
        with tempfile.TemporaryDirectory(prefix=storage.owned_prefix("mlship"), dir=dest) as work:
            (Path(work) / "onnx").mkdir()
            os.kill(os.getpid(), signal.SIGKILL)
    with storage.atomic_dir(dest) as tmp:
        (tmp / "MLmodel").write_text("new")
        if moment == "export":
            os.kill(os.getpid(), signal.SIGKILL)  # half-way through writing the new model
"""


def saved_model(path: Path, text: str = "old") -> Path:
    path.mkdir(parents=True)
    (path / "MLmodel").write_text(text)
    return path


def dot_entries(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_names_carry_host_and_pid(tmp_path: Path) -> None:
    assert owned_prefix("mlship") == f"mlship-{HOST}-{os.getpid()}-"
    with atomic_dir(tmp_path / "model") as tmp:
        assert tmp.name.startswith(f".model.tmp-{HOST}-{os.getpid()}-")


def test_run_killed_mid_swap_is_restored_not_deleted(tmp_path: Path) -> None:
    # Before: `.model.old-*` and `.model.tmp-*` stayed for ever, and the model dir was gone.
    dest = saved_model(tmp_path / "model")
    killed(KILL_ON, str(dest), "swap")
    assert not dest.exists()
    assert [n.split("-")[0] for n in dot_entries(tmp_path)] == [".model.old", ".model.tmp"]
    done = clean_beside(dest)
    assert (dest / "MLmodel").read_text() == "old"  # the last good model, as the alias knows it
    assert done[0].startswith(f"restored {dest} from .model.old-{HOST}-")
    assert done[1].startswith(f"removed stale {tmp_path}/.model.tmp-{HOST}-")
    assert dot_entries(tmp_path) == []


def test_run_killed_mid_export_leaves_a_tmp_that_is_removed(tmp_path: Path) -> None:
    dest = saved_model(tmp_path / "model")
    killed(KILL_ON, str(dest), "export")
    assert len(dot_entries(tmp_path)) == 1
    with atomic_dir(dest) as tmp:  # the next export clears it on its way
        (tmp / "MLmodel").write_text("next")
    assert (dest / "MLmodel").read_text() == "next"
    assert dot_entries(tmp_path) == []


def test_old_copy_is_removed_once_its_replacement_is_in_place(
    tmp_path: Path, dead_pid: int
) -> None:
    dest = saved_model(tmp_path / "model", "new")
    saved_model(tmp_path / f".model.old-{HOST}-{dead_pid}-0123abcd")
    assert clean_beside(dest) == [f"removed stale {tmp_path}/.model.old-{HOST}-{dead_pid}-0123abcd"]
    assert (dest / "MLmodel").read_text() == "new"


def test_newest_old_copy_is_restored(tmp_path: Path, dead_pid: int) -> None:
    saved_model(tmp_path / f".model.old-{HOST}-{dead_pid}-00000001", "older")
    time.sleep(0.01)
    saved_model(tmp_path / f".model.old-{HOST}-{dead_pid}-00000002", "newer")
    dest = tmp_path / "model"
    assert len(clean_beside(dest)) == 2
    assert (dest / "MLmodel").read_text() == "newer"
    assert dot_entries(tmp_path) == []


def test_leftovers_in_use_are_kept(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    live = os.getppid()  # the test runner's parent: alive
    kept = [
        f".model.tmp-{HOST}-{os.getpid()}-0123abcd",  # this process
        f".model.tmp-{HOST}-{live}-0123abcd",  # a live process on this host
        ".model.tmp-otherhost-1-0123abcd",  # another host, on a shared disk: by age only
        ".model.tmp-0123abcd",  # an unowned name from older versions: by age only
        ".model.tmp-notes",  # not a name we make
        f".other.tmp-{HOST}-1-0123abcd",  # another model's
    ]
    for name in kept:
        saved_model(tmp_path / name)
    assert clean_beside(dest) == []
    assert dot_entries(tmp_path) == sorted(kept)


def test_an_hour_without_change_is_stale_whoever_owns_it(tmp_path: Path) -> None:
    path = saved_model(tmp_path / "x")
    later = hour_later(path)
    for tail in ["otherhost-1-0123abcd", "0123abcd", f"{HOST}-{os.getppid()}-0123abcd"]:
        assert not is_stale(path, tail)
        assert is_stale(path, tail, now=later)
    assert not is_stale(path, f"{HOST}-{os.getpid()}-0123abcd", now=later)
    assert not is_stale(path, "notes", now=later)


def test_dead_owner_on_this_host_is_stale_at_once(tmp_path: Path, dead_pid: int) -> None:
    path = saved_model(tmp_path / "x")
    assert is_stale(path, f"{HOST}-{dead_pid}-0123abcd")


def test_temp_dir_of_a_killed_run_is_removed(tmp_path: Path) -> None:
    # Before: `/tmp/mlship-XXXXXXXX` with onnx/ and plots/ piled up, one per killed run.
    killed(KILL_ON, str(tmp_path), "work")
    (left,) = tmp_path.glob("mlship-*")
    assert left.name.startswith(f"mlship-{HOST}-")
    assert clean_temp_dirs(output.WORK_STEM, output.WORK_PARTS, tmp_path) == [
        f"removed stale {left}"
    ]
    assert not left.exists()


def test_temp_dirs_that_are_not_ours_or_in_use_are_kept(tmp_path: Path, dead_pid: int) -> None:
    worktree = tmp_path / "mlship-wt"  # someone's checkout that happens to share the prefix
    (worktree / "src").mkdir(parents=True)
    lookalike = tmp_path / f"mlship-{HOST}-{dead_pid}-abcdefgh"  # our name, foreign contents
    (lookalike / "notes").mkdir(parents=True)
    live = tmp_path / f"mlship-{HOST}-{os.getppid()}-abcdefgh"
    (live / "onnx").mkdir(parents=True)
    legacy = tmp_path / "mlship-abcd_123"  # tempfile's name from before names had an owner
    (legacy / "plots").mkdir(parents=True)
    assert clean_temp_dirs(output.WORK_STEM, output.WORK_PARTS, tmp_path) == []
    assert all(p.exists() for p in (worktree, lookalike, live, legacy))


def test_prepare_output_clears_both_kinds_and_reports(
    tmp_path: Path, dead_pid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    (temp / f"mlship-{HOST}-{dead_pid}-abcdefgh" / "plots").mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    saved_model(tmp_path / f".model.tmp-{HOST}-{dead_pid}-0123abcd")
    lines: list[str] = []
    output.prepare_output(tmp_path / "model", lines.append)
    assert len(lines) == 2 and all(line.startswith("removed stale ") for line in lines)
    assert list(temp.iterdir()) == [] and dot_entries(tmp_path) == []


def test_unwritable_parent_is_one_storage_error_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**_: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(StorageError) as caught:
        check_writable(tmp_path / "a" / "model")
    assert str(caught.value) == (
        f"cannot write {tmp_path}/a/model: cannot create anything in {tmp_path} (Permission denied)"
    )


def test_writable_check_leaves_nothing_behind(tmp_path: Path) -> None:
    check_writable(tmp_path / "a" / "b" / "model")
    assert list(tmp_path.iterdir()) == []  # the missing parents are not created for a probe


@pytest.mark.skipif(not Path("/proc/1").is_dir(), reason="needs Linux /proc")
def test_proc_is_refused() -> None:
    with pytest.raises(StorageError, match=r"^cannot write /proc/1/x: cannot create anything in"):
        check_writable(Path("/proc/1/x"))
