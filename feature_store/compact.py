"""`compact`: merge a feature directory's shards into one, crash-safely.

Steps: (1) copy the winning copy of every clip (newest shard wins) into a temporary shard;
(2) publish it atomically under a name carrying the *newest input's* timestamp, so a shard a
writer publishes meanwhile still sorts after it and keeps winning; (3) delete the inputs.
At every point a reader sees each clip once with identical arrays: before (2) only the inputs,
between (2) and (3) duplicates whose winner holds the same bytes, after (3) the merged shard.
A lock file keeps two compactions of one directory from running at once.
Groups are written under the canonical clip id, so compacting a store written before the
canonical-id rule also renames its `[00001]` groups to `00001`.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from feature_store.feature_dir import FeatureDir, ShardIds, cached_shard_ids, locate_clips
from feature_store.fsutil import fsync_dir
from feature_store.names import shard_name, shard_ns
from feature_store.shard import ShardFile, ShardWriter


@dataclass
class CompactResult:
    feature: str
    fingerprint: str
    shards_before: int
    clips: int
    duplicates_dropped: int
    bytes_before: int
    bytes_after: int
    merged: Path | None


class CompactBusy(RuntimeError):
    pass


@contextlib.contextmanager
def _exclusive(fd: FeatureDir) -> Iterator[None]:
    lock = os.open(fd.path / ".compact.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CompactBusy(f"another compact is running on {fd.path}") from None
        yield
    finally:
        os.close(lock)


def compact_dir(fd: FeatureDir) -> CompactResult:
    with _exclusive(fd):
        fd.clean_temporaries()
        shards = fd.shards()
        before = fd.size_bytes()
        # the snapshot only: shards published meanwhile are left alone
        index, stored = locate_clips(shards, _ids)
        held = sum(len(_ids(shard).ids) for shard in shards)
        result = CompactResult(fd.feature, fd.fingerprint, len(shards), len(index), held - len(index),
                               before, before, None)
        if len(shards) <= 1 and not stored:
            return result
        writer = ShardWriter(fd.path, fd.layout, {"feature": fd.feature, "fingerprint": fd.fingerprint})
        handles: dict[Path, ShardFile] = {}
        try:
            for clip_id in sorted(index):
                shard = index[clip_id]
                if shard not in handles:
                    handles[shard] = ShardFile(shard)
                writer.copy_clip(handles[shard].item(stored.get(clip_id, clip_id)), clip_id)
        except BaseException:
            writer.abort()
            raise
        finally:
            for h in handles.values():
                h.close()
        merged = writer.commit(name=shard_name(ns=shard_ns(shards[-1].name)))
        for shard in shards:
            shard.unlink(missing_ok=True)
        fsync_dir(fd.path)
        result.merged, result.bytes_after = merged, fd.size_bytes()
        return result


def _ids(shard: Path) -> ShardIds:
    try:
        return cached_shard_ids(shard)
    except FileNotFoundError:
        return ShardIds([], {})
