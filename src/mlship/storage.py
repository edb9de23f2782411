"""Files and URIs: formats by name, and write-then-rename so output appears whole or not at all."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlship.errors import DataError, StorageError

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".txt.gz", ".tsv", ".tsv.gz")
# Files that mark a dir as a saved model (``mlship.model.layout`` names them); kept here so the
# lowest layer can refuse to replace anything else without knowing the model format.
MARKERS = ("MLmodel", "mlship.json")
# A leftover (temp dir, moved-aside model) untouched this long is abandoned, whoever made it.
STALE_AFTER_S = 3600.0
# What follows a leftover's kind: ``<host>-<pid>-<random>`` (the owner), or a bare random part
# from before names carried one (uuid hex beside a model dir, tempfile's alphabet in /tmp).
_OWNED = re.compile(r"(?P<host>[A-Za-z0-9]{1,32})-(?P<pid>\d+)-(?P<random>[a-z0-9_]{8})")
_UNOWNED = re.compile(r"[a-z0-9_]{8}")


def infer_format(uri: str, declared: str = "auto") -> str:
    """csv or parquet, from the declared format or the URI's extension (a dir reads as parquet)."""
    if declared != "auto":
        return declared
    path = uri.split("?", 1)[0].rstrip("/").lower()
    if path.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if path.endswith(CSV_SUFFIXES):
        return "csv"
    if "://" not in uri and Path(uri).is_dir():
        return "parquet"
    raise DataError(f"{uri!r}: cannot tell the format from its name; say csv or parquet")


def has_suffix(uri: str) -> bool:
    """Whether the last path segment of ``uri`` has an extension (a file name, not a dir)."""
    return "." in uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def check_replaceable(dest: Path) -> None:
    """Refuse to replace anything but an empty dir or a model dir we wrote before.

    ``output.model_dir=.`` or a typo pointing at a data folder must not wipe it.
    """
    if not dest.exists():
        ancestor = dest.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise StorageError(f"cannot create {dest}: {ancestor} is a file")
        return
    if not dest.is_dir():
        raise StorageError(f"{dest} exists and is not a directory")
    if any(dest.iterdir()) and not any((dest / marker).exists() for marker in MARKERS):
        raise StorageError(
            f"{dest} is a non-empty directory that is not a saved model; "
            "choose another output.model_dir or empty it"
        )


def owner() -> str:
    """``<host>-<pid>`` of this process, as written into the names of its temp dirs."""
    host = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}"


def owned_prefix(stem: str) -> str:
    """A ``tempfile`` prefix naming this process, so a later run can tell if it is still in use."""
    return f"{stem}-{owner()}-"


def _alive(pid: int) -> bool:
    if pid <= 0 or os.name == "nt":  # os.kill(0, ...) signals a group; on Windows it kills
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def _idle_seconds(path: Path, now: float) -> float:
    """Seconds since anything in ``path`` (itself or below) last changed.

    The inode change time, not the modification time: a rename (moving a model aside) and a
    copy that keeps the source's mtime both count as a change.
    """
    try:
        newest = path.lstat().st_ctime
        for base, dirs, files in os.walk(path):
            for name in dirs + files:
                newest = max(newest, Path(base, name).lstat().st_ctime)
    except OSError:  # going away under us: someone is working on it
        return 0.0
    return now - newest


def is_stale(path: Path, tail: str, now: float | None = None) -> bool:
    """Whether a leftover is abandoned: its owner on this host is gone, or it sat for an hour.

    ``tail`` is what follows the leftover's kind in its name. This process's own are in use; an
    owner on another host (a shared filesystem) or an unowned name is judged by age alone.
    """
    match = _OWNED.fullmatch(tail)
    if match is None and _UNOWNED.fullmatch(tail) is None:
        return False  # not a name we make
    host = owner().rpartition("-")[0]
    local = match is not None and match["host"] == host
    pid = int(match["pid"]) if match is not None else 0
    if local and pid == os.getpid():
        return False
    if _idle_seconds(path, time.time() if now is None else now) > STALE_AFTER_S:
        return True
    return local and not _alive(pid)


def _changed(path: Path) -> float:
    try:
        return path.lstat().st_ctime
    except OSError:
        return 0.0


def _sibling(dest: Path, kind: str) -> Path:
    return dest.parent / f".{dest.name}.{kind}-{owner()}-{uuid.uuid4().hex[:8]}"


def _leftovers(dest: Path) -> dict[str, list[Path]]:
    """Stale ``.<name>.tmp-*`` and ``.<name>.old-*`` dirs beside ``dest``, newest first."""
    found: dict[str, list[Path]] = {"tmp": [], "old": []}
    if not dest.parent.is_dir():
        return found
    now = time.time()
    for entry in dest.parent.iterdir():
        for kind, paths in found.items():
            head = f".{dest.name}.{kind}-"
            if (
                entry.name.startswith(head)
                and not entry.is_symlink()
                and entry.is_dir()
                and is_stale(entry, entry.name[len(head) :], now)
            ):
                paths.append(entry)
    for paths in found.values():
        paths.sort(key=_changed, reverse=True)
    return found


def clean_beside(dest: Path) -> list[str]:
    """Clear what a killed run left beside ``dest``; one line per thing done.

    A moved-aside ``.old-*`` with no ``dest`` is the last good model whose swap was cut short:
    it is put back, never deleted. Everything else stale (half-written ``.tmp-*``, an
    ``.old-*`` whose replacement is in place) is removed.
    """
    dest = dest.resolve()
    found = _leftovers(dest)
    done: list[str] = []
    olds = found["old"]
    if olds and not dest.exists():
        try:
            olds[0].rename(dest)
        except OSError as exc:
            return [f"left {olds[0]}: cannot restore it to {dest} ({exc.strerror or exc})"]
        done.append(f"restored {dest} from {olds[0].name} (a run was stopped mid-swap)")
        olds = olds[1:]
    for path in found["tmp"] + olds:
        shutil.rmtree(path, ignore_errors=True)
        done.append(f"removed stale {path}")
    return done


def clean_temp_dirs(stem: str, contents: frozenset[str], root: Path | None = None) -> list[str]:
    """Remove stale ``<stem>-*`` temp dirs (names from :func:`owned_prefix`, or tempfile's own).

    Only dirs holding nothing but ``contents`` are candidates: a temp folder shares a namespace
    with everyone, and a name that merely looks like ours must not cost someone their files.
    """
    base = Path(root or tempfile.gettempdir())
    removed: list[str] = []
    now = time.time()
    for entry in base.glob(f"{stem}-*"):
        if entry.is_symlink() or not entry.is_dir():
            continue
        try:
            inside = {child.name for child in entry.iterdir()}
        except OSError:
            continue
        if inside <= contents and is_stale(entry, entry.name[len(stem) + 1 :], now):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(f"removed stale {entry}")
    return removed


def check_writable(dest: Path) -> None:
    """Prove, before any work, that ``dest`` can be written: make and remove a dir where it goes.

    The nearest existing ancestor is probed, so nothing is created for a run that fails later.
    """
    ancestor = dest.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    try:
        probe = tempfile.mkdtemp(prefix=f".{dest.name}.tmp-{owner()}-", dir=ancestor)
    except OSError as exc:
        raise StorageError(
            f"cannot write {dest}: cannot create anything in {ancestor} ({exc.strerror or exc})"
        ) from None
    Path(probe).rmdir()


@contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a fresh sibling temp dir; on success it replaces ``dest``, on error it is removed.

    The temp dir sits beside ``dest`` so the final step is a rename on one filesystem. An
    existing ``dest`` is moved aside first and deleted only after the new one is in place.
    Both names carry this process's host and PID, so a later run can clear what a killed one
    left (:func:`clean_beside`).
    """
    dest = dest.resolve()
    check_replaceable(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        clean_beside(dest)
        tmp = _sibling(dest, "tmp")
        tmp.mkdir()
    except OSError as exc:
        raise StorageError(f"cannot write in {dest.parent}: {exc.strerror or exc}") from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        _swap(tmp, dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(f"cannot put {dest} in place: {exc.strerror or exc}") from None


def _swap(tmp: Path, dest: Path) -> None:
    old = None
    if dest.exists():
        old = _sibling(dest, "old")
        dest.rename(old)
    try:
        tmp.rename(dest)
    except BaseException:
        if old is not None:
            old.rename(dest)  # if this fails too, the next run's clean_beside puts it back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
