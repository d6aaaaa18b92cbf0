"""Reading one (feature, fingerprint): lazy, cached HDF5 handles; clip lookup by id.

Handles are opened on first use and kept until close(). After a fork (e.g. DataLoader workers)
the child reopens its own handles instead of sharing the parent's. If a shard disappears
(merged by a concurrent `compact`) the index is rebuilt once and the read retried.
Clips are looked up by canonical id (`[00001]` finds `00001`; see clip_ids.py), also in shards
written before that rule, whose groups keep their stored names.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np

from feature_store.attrs import read_attrs
from feature_store.clip_ids import canonical_id
from feature_store.feature_dir import FeatureDir
from feature_store.names import encode_id
from feature_store.shard import open_h5


class FeatureReader:
    def __init__(self, feature_dir: FeatureDir):
        self.dir = feature_dir
        self.feature = feature_dir.feature
        self.fingerprint = feature_dir.fingerprint
        self.spec: dict[str, Any] = feature_dir.spec
        self._handles: dict[Path, h5py.File] = {}
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

    def _group_name(self, clip_id: str) -> str:
        return encode_id(self._stored.get(clip_id, clip_id))

    def group(self, clip_id: str, retry: bool = True) -> h5py.Group:
        """The clip's raw HDF5 group (datasets `data`, `times`, `extras/*`; attributes)."""
        clip_id = self._canonical(clip_id)
        try:
            shard = self._index[clip_id]
        except KeyError:
            raise KeyError(f"clip {clip_id!r} is not in {self.feature}@{self.fingerprint} "
                           f"({len(self._index)} clips in {self.dir.path})") from None
        if self._pid != os.getpid():  # forked: never use the parent's HDF5 handles
            self._handles, self._pid = {}, os.getpid()
        handle = self._handles.get(shard)
        if handle is None:
            try:
                handle = self._handles[shard] = open_h5(shard)
            except FileNotFoundError:
                if not retry:
                    raise
                self.refresh()
                return self.group(clip_id, retry=False)
        return handle["clips"][self._group_name(clip_id)]

    @staticmethod
    def _as_output(raw: np.ndarray) -> np.ndarray:
        return raw.astype(np.float32) if raw.dtype == np.float16 else raw

    def get(self, clip_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(data, times): data (T, dim) float32 (float16 storage is widened; uint8 stays uint8)."""
        group = self.group(clip_id)
        return self._as_output(group["data"][()]), group["times"][()]

    def attrs(self, clip_id: str) -> dict[str, Any]:
        return read_attrs(self.group(clip_id))

    def extra_names(self, clip_id: str) -> list[str]:
        extras = self.group(clip_id).get("extras")
        return sorted(extras) if extras is not None else []

    def extra(self, clip_id: str, name: str) -> np.ndarray:
        extras = self.group(clip_id).get("extras")
        if extras is None or name not in extras:
            raise KeyError(f"clip {clip_id!r} of {self.feature}@{self.fingerprint} has no extra {name!r}; "
                           f"it has {self.extra_names(clip_id)}")
        return extras[name][()]

    def load_all(self, ids: Iterable[str] | None = None, dtype: Any = None) -> list[np.ndarray]:
        """Data arrays of `ids` (default: all, sorted) in that order, read shard by shard.
        float16 storage is widened to float32 unless `dtype` says otherwise."""
        ids = self.ids() if ids is None else [self._canonical(c) for c in ids]
        by_shard: dict[Path, list[int]] = {}
        for i, clip_id in enumerate(ids):
            if clip_id not in self._index:
                self.group(clip_id)  # raises the KeyError with the full message
            by_shard.setdefault(self._index[clip_id], []).append(i)
        out: list[np.ndarray | None] = [None] * len(ids)
        for positions in by_shard.values():
            clips = self.group(ids[positions[0]]).parent  # the shard's `clips` group, opened once
            for i in positions:
                ds = clips[f"{self._group_name(ids[i])}/data"]
                target = np.dtype(dtype) if dtype is not None else (np.float32 if ds.dtype == np.float16 else ds.dtype)
                arr = np.empty(ds.shape, dtype=target)
                ds.read_direct(arr)
                out[i] = arr
        return out  # type: ignore[return-value]

    def close(self) -> None:
        if self._pid == os.getpid():
            for handle in self._handles.values():
                if handle.id.valid:
                    handle.close()
        self._handles = {}

    def __enter__(self) -> "FeatureReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
