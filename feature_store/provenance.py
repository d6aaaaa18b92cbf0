"""Source provenance stored with every clip: path, size, mtime and a fast content hash."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

MIB = 1 << 20


def fast_content_hash(path: str | os.PathLike[str]) -> str:
    """sha256 over (size as 8 little-endian bytes + first MiB + last MiB) of the file.

    This is a *fast* hash, not a full-content hash: files up to 2 MiB are hashed whole, larger
    files only at both ends. It catches replaced, truncated or re-encoded media cheaply; an
    edit confined to the middle of a large file with the size unchanged would go unnoticed."""
    p = Path(path)
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h = hashlib.sha256(size.to_bytes(8, "little"))
        if size <= 2 * MIB:
            h.update(f.read())
        else:
            h.update(f.read(MIB))
            f.seek(size - MIB)
            h.update(f.read(MIB))
    return h.hexdigest()


def source_attrs(path: str | os.PathLike[str]) -> dict[str, object]:
    """{"source": absolute path, "size": bytes, "mtime": seconds, "content_hash": fast hash}."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"source file not found: {p}") from None
    return {"source": os.path.abspath(p), "size": int(st.st_size), "mtime": float(st.st_mtime),
            "content_hash": fast_content_hash(p)}
