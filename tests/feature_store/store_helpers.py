"""Helpers shared by the store tests (imported by name: this folder has no __init__.py)."""
from __future__ import annotations

import zlib
from typing import Iterable

import numpy as np

from feature_store import FeatureDir

SPEC = {"name": "toy", "version": "1", "dim": 6, "dtype": "float32"}


def toy_clip(i: int, dim: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(i)
    t = 3 + i % 4
    return rng.standard_normal((t, dim)).astype(np.float32), np.arange(t) * 0.04 + i


def write_clips(fd: FeatureDir, ids: Iterable[str], per_shard: int = 4, **attrs: object) -> None:
    ids = list(ids)
    for start in range(0, len(ids), per_shard):
        with fd.open_shard() as shard:
            for clip_id in ids[start:start + per_shard]:
                data, times = toy_clip(zlib.crc32(clip_id.encode()) % 1000)
                shard.add(clip_id, data, times, attrs={"duration": float(times[-1]), **attrs})
