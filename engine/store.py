"""Job folders on disk: the lock on an output folder, fingerprints of what a result depends on,
and folders that appear whole.

**Fingerprints.** A completed job folder is reused only when nothing it depends on has changed:
the request (job name and type, parameters, input references: ``spec_fingerprint``), the
align3d version, the content of every input file and the fingerprints of the jobs it reads
from (``fingerprint``). Each input file is fingerprinted by its identity (size, mtime_ns,
ctime_ns, inode, device) and a SHA-256 of every byte:

* the content hash is of the whole file, not of samples: a map edited in one region (a
  re-masked domain, a patched box) keeps most of its bytes, and a sampled hash would miss it;
* SHA-256 runs at 1.5-2 GB/s on the CPUs this runs on (SHA extensions), faster than the disk
  reads it rides on; and the job then reads its maps from the page cache the hash just filled;
* a rerun re-reads nothing when a file's identity is the one recorded, since every write
  through the file system updates ``ctime``, which no user tool can set back. Only a file whose
  identity changed (rewritten, copied over, touched) is hashed again, so a ``touch`` alone does
  not recompute anything, and a reuse check of a multi-GB job costs a few ``stat`` calls.

**Folders.** A job works in a temporary sibling (``.NAME.tmp-PID``) that is renamed into place
with its ``result.json`` once complete; a rerun removes the temporary folders of runs that are
no longer alive (killed outright, say) and says so.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from align3d.schemas.documents import SCHEMA_VERSION, FileFingerprint, ResultManifest
from align3d.slots.atomic import stale_temporaries

logger = logging.getLogger(__name__)

HASH_CHUNK = 8 * 2**20
HASH_THREADS = 2
"""Files are hashed two at a time (hashlib releases the GIL on large buffers)."""


class OutputExists(Exception):
    """A completed job folder is already there and ``force`` was not given."""


class OutputBusy(Exception):
    """Another align3d run is writing into the same output folder."""


class OutputWriteError(Exception):
    """The outputs cannot be written (no space, quota, read-only, permission); the message
    names the folder and the cause."""


STORAGE_ERRORS = {
    errno.ENOSPC: "the file system is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def storage_error(exc: OSError, folder: Path) -> OutputWriteError | None:
    """``exc`` as a clear :class:`OutputWriteError` when it is a storage failure, else None."""
    cause = STORAGE_ERRORS.get(exc.errno or 0)
    if cause is None:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    return OutputWriteError(
        f"{folder}: {cause}{where}; nothing partial was kept: free space, ask for more quota, "
        "or choose another --out on a writable file system"
    )


def free_bytes(folder: Path) -> int:
    """Free bytes (for this user) on the file system that holds, or will hold, ``folder``."""
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def check_free_space(folder: Path, needed_bytes: int) -> None:
    """Refuse before any work when the outputs (``needed_bytes``, an estimate) cannot fit."""
    free = free_bytes(folder)
    margin = 64 * 2**20
    if needed_bytes + margin > free:
        raise OutputWriteError(
            f"{folder}: the outputs need about {needed_bytes / 2**30:.2f} GB and the file system "
            f"has {free / 2**30:.2f} GB free; free space, or choose another --out"
        )


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` for the whole run (``.NAME.lock`` beside it): a
    second run into the same folder refuses at once instead of mixing its files in."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out_dir.parent / f".{out_dir.name}.lock"
    handle = lock_path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise OutputBusy(
                f"{out_dir} is being written by another align3d run ({owner}); wait for it to "
                "finish or choose another --out"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)
    finally:
        handle.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _identity(stat: os.stat_result) -> tuple[int, int, int, int, int]:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)


def _identity_of(recorded: FileFingerprint) -> tuple[int, int, int, int, int]:
    return (recorded.size, recorded.mtime_ns, recorded.ctime_ns, recorded.inode, recorded.device)


def fingerprint_files(
    paths: Iterable[Path], known: Iterable[FileFingerprint] = ()
) -> list[FileFingerprint]:
    """The fingerprint of each existing file of ``paths`` (absolute, sorted, once each). A file
    whose identity matches one in ``known`` keeps its recorded hash without being read."""
    recorded = {k.path: k for k in known}
    unique = sorted({str(Path(p).resolve()) for p in paths})

    def one(path: str) -> FileFingerprint | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None  # the preflight names missing or unreadable files
        previous = recorded.get(path)
        if previous is not None and _identity(stat) == _identity_of(previous):
            return previous
        try:
            digest = _sha256(Path(path))
        except OSError:
            return None
        return FileFingerprint(
            path=path,
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            ctime_ns=stat.st_ctime_ns,
            inode=stat.st_ino,
            device=stat.st_dev,
            sha256=digest,
        )

    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        found = list(pool.map(one, unique))
    return [f for f in found if f is not None]


def unchanged(recorded: FileFingerprint) -> bool:
    """Whether a recorded file still has the identity it had (a ``stat``, no read)."""
    try:
        stat = os.stat(recorded.path)
    except OSError:
        return False
    return _identity(stat) == _identity_of(recorded)


def digest(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def content_fingerprint(
    spec_fingerprint: str,
    version: str,
    files: Iterable[FileFingerprint],
    upstream: Mapping[str, str],
) -> str:
    """The fingerprint of everything a result depends on (see the module docstring)."""
    return digest(
        {
            "spec": spec_fingerprint,
            "version": version,
            "files": {f.path: f.sha256 for f in files},
            "upstream": dict(upstream),
        }
    )


def changes(
    old: ResultManifest, version: str, files: list[FileFingerprint], upstream: Mapping[str, str]
) -> list[str]:
    """Why a completed job is out of date, in words (empty when it is not)."""
    reasons = []
    if old.align3d_version != version:
        reasons.append(f"it was made by align3d {old.align3d_version}, this is {version}")
    before = {f.path: f for f in old.inputs}
    now = {f.path: f for f in files}
    for path in sorted(before.keys() | now.keys()):
        if path not in now:
            reasons.append(f"input {path} is gone or unreadable")
        elif path not in before:
            reasons.append(f"input {path} is new")
        elif before[path].sha256 != now[path].sha256:
            reasons.append(
                f"input {path} changed since the completed run ({before[path].size} -> "
                f"{now[path].size} bytes, new content)"
            )
    for name in sorted(old.upstream.keys() | upstream.keys()):
        if old.upstream.get(name) != upstream.get(name):
            reasons.append(f"upstream job {name!r} was recomputed")
    return reasons


EARLIER_SCHEMA_VERSION = 2
"""The layout of ``result.json`` before ``details``: the job's findings beside the runtime's
fields. Job folders of that version are read (:func:`parse_manifest`), not reused."""


def parse_manifest(text: str | bytes, earlier_versions: bool = True) -> ResultManifest:
    """A ``result.json`` document as a manifest of :data:`SCHEMA_VERSION`. With
    ``earlier_versions``, a version-2 document is read too: the fields that are not the
    runtime's (a job's findings) become its ``details`` (None when they are all empty, as an
    import job's were). Raises ``ValueError`` (a pydantic ``ValidationError``) otherwise."""
    data = json.loads(text)
    if earlier_versions and isinstance(data, dict):
        if data.get("schema_version") == EARLIER_SCHEMA_VERSION:
            runtime = set(ResultManifest.model_fields) - {"details"}
            found = {k: v for k, v in data.items() if k not in runtime}
            data = {k: v for k, v in data.items() if k in runtime}
            data["schema_version"] = SCHEMA_VERSION
            data["details"] = found if any(v not in (None, []) for v in found.values()) else None
    return ResultManifest.model_validate(data)


def read_manifest(job_dir: Path, earlier_versions: bool = True) -> ResultManifest | None:
    """The manifest of a completed job folder, or None (none there, or unreadable). A folder of
    an earlier layout is read only with ``earlier_versions`` (reuse asks for the current one)."""
    path = job_dir / "result.json"
    if not path.exists():
        return None
    try:
        return parse_manifest(path.read_bytes(), earlier_versions)
    except (ValueError, OSError):
        return None


def old_job_of(job_dir: Path) -> tuple[str, str] | None:
    """``(job, job_type)`` of a folder holding a manifest of any schema version, or None."""
    try:
        data = json.loads((job_dir / "result.json").read_text())
        return str(data["job"]), str(data["job_type"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_stale_temporaries(job_dir: Path) -> list[Path]:
    """Remove the temporary folders (and files) that runs no longer alive left beside
    ``job_dir``; returns what was removed."""
    removed = []
    for old in stale_temporaries(job_dir):
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
        removed.append(old)
        logger.warning(
            "removed %s, left by an earlier run that ended without cleaning up (killed?)", old
        )
    return removed


@contextmanager
def job_folder(job_dir: Path, replace: bool) -> Iterator[Path]:
    """A temporary folder to build the job in; renamed to ``job_dir`` when the block ends
    without error (replacing an old folder when ``replace``), removed otherwise."""
    job_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(job_dir)
    tmp = job_dir.parent / f".{job_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if job_dir.exists():
            if not replace and any(job_dir.iterdir()):
                raise OutputExists(f"{job_dir} appeared while the job ran; choose another --out")
            shutil.rmtree(job_dir)
        os.replace(tmp, job_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
