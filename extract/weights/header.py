"""Tensor shapes from a safetensors file's header, without torch and without reading the data.

Used where a checkpoint decides an output width (a classifier's class count) and the planner
must know it before any model is built.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

MAX_HEADER = 100 << 20


def tensor_shape(path: str | Path | None, key: str) -> tuple[int, ...] | None:
    """Shape of `key` (or `module.<key>`) in a .safetensors file; None if not knowable cheaply."""
    if path is None or Path(path).suffix != ".safetensors" or not Path(path).is_file():
        return None
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > MAX_HEADER:
                return None
            header = json.loads(f.read(size))
    except (OSError, ValueError, struct.error):
        return None
    entry = header.get(key) or header.get(f"module.{key}")
    return tuple(int(s) for s in entry["shape"]) if isinstance(entry, dict) and "shape" in entry else None
