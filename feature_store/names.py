"""File and group names inside the store.

Clip ids may hold characters HDF5 treats specially ('/', '.') or that are awkward in file
names; they are percent-encoded (UTF-8 bytes, `%XX`) except for [A-Za-z0-9_-], so encoding is
reversible and the original id is also kept in the clip group's `clip_id` attribute.

Shards are named `shard-<ns>-<pid>-<random>.h5` where `<ns>` is the wall-clock time in ns at
publication, zero-padded so that name order is publication order (newest shard wins when a
clip appears twice). Temporaries start with a dot, `.tmp-shard-<ns>-<host>-<pid>-<random>.h5`,
so readers listing `shard-*.h5` never see them.
"""
from __future__ import annotations

import os
import re
import secrets
import socket
import threading
import time

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
SHARD_RE = re.compile(r"^shard-(\d{20})-[0-9A-Za-z-]+\.h5$")
TEMP_PREFIX = ".tmp-shard-"
TEMP_RE = re.compile(r"^\.tmp-shard-(\d{20})-(.*)-(\d+)-[0-9a-f]+\.h5$")

_clock_lock = threading.Lock()
_last_ns = 0


def encode_id(clip_id: str) -> str:
    if not isinstance(clip_id, str) or not clip_id:
        raise ValueError(f"clip id must be a non-empty string, got {clip_id!r}")
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8"))
                   for c in clip_id)


def decode_id(name: str) -> str:
    if "%" not in name:
        return name
    out, i, raw = bytearray(), 0, name.encode("ascii")
    while i < len(raw):
        if raw[i] == 0x25:  # '%'
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8")


def monotonic_ns() -> int:
    """Wall-clock ns, strictly increasing within this process (guards against clock steps)."""
    global _last_ns
    with _clock_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        return _last_ns


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"


def shard_name(ns: int | None = None) -> str:
    ns = monotonic_ns() if ns is None else ns
    return f"shard-{ns:020d}-{os.getpid():07d}-{secrets.token_hex(4)}.h5"


def temp_name() -> str:
    return f"{TEMP_PREFIX}{monotonic_ns():020d}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}.h5"


def shard_ns(name: str) -> int:
    m = SHARD_RE.match(name)
    if not m:
        raise ValueError(f"not a shard file name: {name}")
    return int(m.group(1))


def temp_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) that created a temporary, or None if the name is not ours."""
    m = TEMP_RE.match(name)
    return (m.group(2), int(m.group(3))) if m else None


def this_host() -> str:
    return _host()
