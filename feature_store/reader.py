"""Reading one (feature, fingerprint): lazily opened, cached shards; clip lookup by id.

Shards are opened on first use (feature_store.shard.ShardFile) and kept until close(). After a
fork (e.g. DataLoader workers) the child reopens its own handles instead of sharing the parent's.
If a shard disappears (merged by a concurrent `compact`) the index is rebuilt once and the read
retried. Clips are looked up by canonical id (`[00001]` finds `00001`; see clip_ids.py), also in
shards written before that rule, whose groups keep their stored names.

Data comes back as stored, except that float16 storage is widened to float32 unless a `dtype`
is asked for (`get(..., dtype=np.float16)`, `load_all(dtype=...)`): a trainer that keeps large
token-set features in memory as float16 can, and everything else sees float32.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from feature_store.clip_ids import canonical_id
from feature_store.feature_dir import FeatureDir
from feature_store.shard import ShardFile, StoredItem


class FeatureReader:
    def __init__(self, feature_dir: FeatureDir):
        self.dir = feature_dir
        self.feature = feature_dir.feature
        self.fingerprint = feature_dir.fingerprint
        self.spec: dict[str, Any] = feature_dir.spec
        self._handles: dict[Path, ShardFile] = {}
        self._pid = os.getpid()
        self._index, self._stored = feature_dir.locate()

    def __repr__(self) -> str:
        return f"FeatureReader({self.feature}@{self.fingerprint}, {len(self._index)} clips)"

    def refresh(self) -> None:
        """Pick up shards published (or compacted) since this reader was made."""
        self.close()
        self._index, self._stored = self.dir.locate()

    def ids(self) -> list[str]:
        return sorted(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._index or (isinstance(clip_id, str) and canonical_id(clip_id) in self._index)

    def _canonical(self, clip_id: str) -> str:
        return clip_id if clip_id in self._index else canonical_id(clip_id)

    def _shard(self, shard: Path) -> ShardFile:
        if self._pid != os.getpid():  # forked: never use the parent's HDF5 handles
            self._handles, self._pid = {}, os.getpid()
        handle = self._handles.get(shard)
        if handle is None:
            handle = self._handles[shard] = ShardFile(shard)
        return handle

    def item(self, clip_id: str, retry: bool = True) -> StoredItem:
        """The clip's stored item: shapes, dtype, attributes; arrays are read on request."""
        clip_id = self._canonical(clip_id)
        try:
            shard = self._index[clip_id]
        except KeyError:
            raise KeyError(f"clip {clip_id!r} is not in {self.feature}@{self.fingerprint} "
                           f"({len(self._index)} clips in {self.dir.path})") from None
        try:
            handle = self._shard(shard)
        except FileNotFoundError:  # merged away by a concurrent compact: list again, once
            if not retry:
                raise
            self.refresh()
            return self.item(clip_id, retry=False)
        return handle.item(self._stored.get(clip_id, clip_id))

    @staticmethod
    def _output_dtype(stored: np.dtype, dtype: Any) -> np.dtype:
        if dtype is not None:
            return np.dtype(dtype)
        return np.dtype(np.float32) if stored == np.float16 else stored

    def get(self, clip_id: str, dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(data, times): data (T, *row) (float16 storage widened to float32 unless `dtype` is given;
        uint8 stays uint8), times (T,) float64 seconds."""
        item = self.item(clip_id)
        return item.data(self._output_dtype(item.dtype, dtype)), item.times()

    def attrs(self, clip_id: str) -> dict[str, Any]:
        return self.item(clip_id).attrs()

    def extra_names(self, clip_id: str) -> list[str]:
        return sorted(self.item(clip_id).extras())

    def extra(self, clip_id: str, name: str) -> np.ndarray:
        item = self.item(clip_id)
        if name not in item.extras():
            raise KeyError(f"clip {clip_id!r} of {self.feature}@{self.fingerprint} has no extra {name!r}; "
                           f"it has {sorted(item.extras())}")
        return item.extra(name)

    def load_all(self, ids: Iterable[str] | None = None, dtype: Any = None) -> list[np.ndarray]:
        """Data arrays of `ids` (default: all, sorted) in that order, read shard by shard."""
        ids = self.ids() if ids is None else [self._canonical(c) for c in ids]
        for clip_id in ids:
            if clip_id not in self._index:
                self.item(clip_id)  # raises the KeyError with the full message
        out: list[np.ndarray | None] = [None] * len(ids)
        for i in sorted(range(len(ids)), key=lambda k: self._index[ids[k]].name):  # one shard after another
            item = self.item(ids[i])
            out[i] = item.data(self._output_dtype(item.dtype, dtype))
        return out  # type: ignore[return-value]

    def close(self) -> None:
        if self._pid == os.getpid():
            for handle in self._handles.values():
                handle.close()
        self._handles = {}

    def __enter__(self) -> "FeatureReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
