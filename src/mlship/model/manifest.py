"""The integrity manifest: size and SHA-256 of every file in a model dir, written last at export.

``manifest.json`` lists every other file of the dir (relative POSIX paths, sorted) with its
size and SHA-256, plus the format version and the registry name, version and run id. Its own
digest (SHA-256 of its bytes) is what the MLflow run and registered version record, so a dir can
be traced to the export that wrote it.

``verify`` runs before anything in the dir is parsed or unpickled: every listed file must exist
with its size and digest, nothing unlisted may be present, and only regular files are allowed (a
symlink could point anywhere). It reads each file once, in 1 MiB chunks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlship.errors import ModelError
from mlship.model import layout

CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 1 << 20  # a manifest of a few dozen files is a few KiB
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class FileEntry:
    """One file of a model dir as the manifest records it."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest and the digest of its bytes (what the registry records)."""

    format_version: int
    name: str
    version: str
    run_id: str
    files: tuple[FileEntry, ...]
    sha256: str


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(model_dir: Path, *, name: str, version: str, run_id: str) -> str:
    """Write ``manifest.json`` over the dir's current files; returns the manifest's digest.

    Call it last: a file written after it makes the dir fail verification.
    """
    files = [
        {"path": rel, "size": path.stat().st_size, "sha256": file_sha256(path)}
        for rel, path in sorted(_scan(model_dir).items())
    ]
    content = {
        "format_version": layout.FORMAT_VERSION,
        "name": name,
        "version": version,
        "run_id": run_id,
        "files": files,
    }
    data = (json.dumps(content, indent=2, sort_keys=True) + "\n").encode("utf-8")
    (model_dir / layout.MANIFEST).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def verify(root: Path) -> Manifest | None:
    """Check the dir against its manifest; None when it has none (the caller decides if it may).

    Raises ``ModelError`` naming the first file at fault (and how many more there are).
    """
    path = root / layout.MANIFEST
    if not path.exists() and not path.is_symlink():
        return None
    manifest = read_manifest(root)
    present = _scan(root)
    listed = {entry.path: entry for entry in manifest.files}
    problems = [
        f"unexpected file {rel} (not in the manifest)" for rel in present if rel not in listed
    ]
    problems += [
        f"file {rel} is listed in the manifest but missing" for rel in listed if rel not in present
    ]
    problems += [
        problem
        for rel in sorted(set(listed) & set(present))
        if (problem := _mismatch(present[rel], listed[rel]))
    ]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ModelError(f"model dir {root}: {problems[0]}{more}")
    return manifest


def read_manifest(root: Path) -> Manifest:
    """Parse ``manifest.json`` (bounded in size) into a ``Manifest``; one line if malformed."""
    path = root / layout.MANIFEST
    where = f"model dir {root}: {layout.MANIFEST}"
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise ModelError(f"{where} is not a regular file")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise ModelError(f"{where} is {info.st_size} bytes; a manifest is at most 1 MiB")
    data = path.read_bytes()
    try:
        raw: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{where} is not valid JSON ({type(exc).__name__})") from None
    return _parse(raw, where, hashlib.sha256(data).hexdigest())


def _parse(raw: Any, where: str, digest: str) -> Manifest:
    if not isinstance(raw, dict):
        raise ModelError(f"{where} is malformed (expected a JSON object)")
    fmt = raw.get("format_version")
    if type(fmt) is not int or fmt not in layout.KNOWN_FORMATS:
        raise ModelError(
            f"{where}: model format {fmt!r} is not known to this mlship (reads up to "
            f"{max(layout.KNOWN_FORMATS)}); upgrade mlship or re-export the model"
        )
    identity = [raw.get(key) for key in ("name", "version", "run_id")]
    strings = [value for value in identity if isinstance(value, str)]
    if len(strings) != len(identity):
        raise ModelError(f"{where} is malformed (name, version and run_id must be strings)")
    files = raw.get("files")
    if not isinstance(files, list):
        raise ModelError(f"{where} is malformed (files must be a list)")
    entries = tuple(_entry(item, i, where) for i, item in enumerate(files))
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            raise ModelError(f"{where} is malformed (file {entry.path} is listed twice)")
        seen.add(entry.path)
    name, version, run_id = strings
    return Manifest(fmt, name, version, run_id, entries, digest)


def _entry(item: Any, index: int, where: str) -> FileEntry:
    bad = f"{where} is malformed (files[{index}]"
    if not isinstance(item, dict):
        raise ModelError(f"{bad} is not an object)")
    rel, size, sha = item.get("path"), item.get("size"), item.get("sha256")
    if not isinstance(rel, str) or not is_plain_relative(rel):
        raise ModelError(f"{bad}.path must be a relative path inside the dir)")
    if type(size) is not int or size < 0:
        raise ModelError(f"{bad}.size must be a byte count)")
    if not isinstance(sha, str) or not HEX64.match(sha):
        raise ModelError(f"{bad}.sha256 must be 64 lowercase hex digits)")
    return FileEntry(rel, size, sha)


def is_plain_relative(rel: str) -> bool:
    """A relative POSIX path that stays inside its dir (no ``..``, no absolute, no empty part)."""
    parts = rel.split("/")
    return "\\" not in rel and all(part not in ("", ".", "..") for part in parts)


def _mismatch(path: Path, entry: FileEntry) -> str | None:
    size = path.stat().st_size
    if size != entry.size:
        return (
            f"file {entry.path} does not match the manifest "
            f"(size {size} bytes, manifest says {entry.size})"
        )
    actual = file_sha256(path)
    if actual != entry.sha256:
        return (
            f"file {entry.path} does not match the manifest "
            f"(sha256 {actual[:16]}..., manifest says {entry.sha256[:16]}...)"
        )
    return None


def _scan(root: Path) -> dict[str, Path]:
    """Every regular file under ``root`` but the manifest, by relative POSIX path, sorted.

    A symlink, device, socket or pipe is refused: only plain files are verified and loaded.
    """
    found: dict[str, Path] = {}
    for folder, dirs, names in os.walk(root, followlinks=False, onerror=_walk_error):
        base = Path(folder)
        for name in sorted(dirs + names):
            path = base / name
            rel = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                kind = "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
                raise ModelError(
                    f"model dir {root}: {rel} is {kind}; a model dir holds plain files"
                )
            if rel != layout.MANIFEST:
                found[rel] = path
    return dict(sorted(found.items()))


def _walk_error(exc: OSError) -> None:
    raise ModelError(f"model dir: cannot read {exc.filename}: {exc.strerror or exc}") from None
