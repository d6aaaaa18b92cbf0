"""Small durable-filesystem helpers: fsync'd atomic writes, directory fsync, atomic appends."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

MAX_ATOMIC_LINE = 4000  # O_APPEND writes of < PIPE_BUF-ish sizes are not interleaved on local FSs


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary beside `path`, fsync, rename over `path`, fsync the directory."""
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def append_line(path: Path, line: bytes) -> None:
    """Append one line with a single write on an O_APPEND descriptor (no torn interleaving)."""
    if not line.endswith(b"\n"):
        line += b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def is_locked(path: Path) -> bool:
    """True if another open file description holds a flock on `path` (i.e. a live writer)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if we got it
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


PROBE_BYTES = 1 << 20  # what the writability probe writes: a disk with less free space is full for us


def unwritable_reason(directory: Path) -> str | None:
    """Why `directory` (created if missing) cannot take new files, or None if a probe file of
    PROBE_BYTES could be written, fsynced and removed."""
    import errno

    probe = directory / f".eri-write-probe-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(b"\0" * PROBE_BYTES)
            while view:  # a nearly full disk takes a short write first, then ENOSPC
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as exc:
        what = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "permission denied"}.get(exc.errno, exc.strerror or str(exc))
        return f"{directory}: cannot write to the store ({what})"
    return None
