"""sha256 of files and the per-entry manifest.json.

Hashes are remembered per process, and across processes in $ERI_CACHE_DIR/sha256-cache.json keyed
by the file's real path, size, mtime, ctime and inode: a rerun of eri-extract does not read every
checkpoint again (wav2vec2-base is 360 MB) to fingerprint its features. ctime cannot be set by
hand and changes with any write, so an edited file is always hashed again. `eri-weights verify`,
`fetch` and `import` hash from the bytes (`fresh_hashes()`).

Files that came in through `eri-weights fetch/import` get a manifest recording every file's sha256,
where it came from and whether that source matched a registry pin; the resolver checks against it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST = "manifest.json"
HASH_CACHE = "sha256-cache.json"
_CHUNK = 1 << 20
_hash_cache: dict[tuple[str, int, int], str] = {}
_persistent: dict[str, list] | None = None  # real path -> [size, mtime_ns, ctime_ns, inode, sha256]
_trust_persistent = True
log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]  # (bytes done, total or None)


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    """sha256 of a file; computed once for a given (path, size, mtime, ctime, inode), see the module doc."""
    st = path.stat()
    real = str(path.resolve())
    key = (real, st.st_size, st.st_mtime_ns)
    if key in _hash_cache:
        return _hash_cache[key]
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    known = _persistent_cache().get(real) if _trust_persistent else None
    if known is not None and known[:4] == stamp:
        _hash_cache[key] = known[4]
        return known[4]
    digest, done = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, st.st_size)
    _hash_cache[key] = digest.hexdigest()
    _remember(real, [*stamp, _hash_cache[key]])
    return _hash_cache[key]


@contextlib.contextmanager
def fresh_hashes() -> Iterator[None]:
    """Hash from the bytes inside this block (verify, fetch, import), not from remembered hashes."""
    global _trust_persistent
    previous, _trust_persistent = _trust_persistent, False
    _hash_cache.clear()
    try:
        yield
    finally:
        _trust_persistent = previous


def _cache_path() -> Path:
    from extract.weights.paths import cache_root

    return cache_root() / HASH_CACHE


def _persistent_cache() -> dict[str, list]:
    global _persistent
    if _persistent is None:
        try:
            loaded = json.loads(_cache_path().read_text())
            _persistent = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            _persistent = {}
    return _persistent


def _remember(real: str, record: list) -> None:
    """Add one hash to the cache file (atomically; a cache that cannot be written is only slower)."""
    cache = _persistent_cache()
    cache[real] = record
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{HASH_CACHE}.")
        with os.fdopen(fd, "w") as f:
            json.dump(cache, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("cannot update %s: %s", path, exc)


def sha256_dir(path: Path) -> str:
    """One digest for a directory checkpoint: sha256 over sorted 'relative-name sha256' lines."""
    files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.name != MANIFEST
             and not any(part.startswith(".") for part in p.relative_to(path).parts)]
    lines = [f"{p.relative_to(path).as_posix()} {sha256_file(p)}\n" for p in files]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass
class Manifest:
    name: str
    main: str  # file resolve returns, relative to the entry dir ("." = the dir itself)
    files: dict[str, dict] = field(default_factory=dict)  # name -> {"sha256", "size"}
    origin: str = ""  # URL, wheel member, or the imported path
    source_sha256: str | None = None  # sha256 of the file as obtained (before conversion)
    pinned: bool = False  # source_sha256 matched the registry pin
    converter: str | None = None
    converted: bool = True  # False: source stored, conversion still pending
    pending_reason: str = ""
    dropped: list[str] = field(default_factory=list)  # non-tensor items left out on import
    created: str = ""

    def add_file(self, directory: Path, name: str) -> None:
        p = directory / name
        self.files[name] = {"sha256": sha256_file(p), "size": p.stat().st_size}


def read_manifest(directory: Path) -> Manifest | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return Manifest(**data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable manifest ({exc}); delete it and fetch/import again") from exc


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    manifest.created = manifest.created or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return atomic_write_bytes(directory / MANIFEST,
                              (json.dumps(asdict(manifest), indent=2) + "\n").encode())


def umask_mode(path: str | Path, mode: int = 0o666) -> None:
    """mkstemp creates 0600 files; give finished files the usual permissions."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, mode & ~mask)


def atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    """`write(tmp)` fills a temporary beside `path`, which then replaces `path` in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        write(tmp)
        umask_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return atomic_write(path, write)
