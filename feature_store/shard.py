"""One shard file: written once by one writer under a temporary name, then published atomically,
and read through ShardFile. This module is the only one that knows HDF5 (h5py): the rest of the
store and the project see ShardWriter, ShardFile and StoredItem.

File layout: root attributes `format`, `feature`, `fingerprint`; group `clips/<encoded id>` per
clip holding datasets `data` (T, *row) — rows are vectors (dim,), token sets (N, D) or images
(S, S, 3) —, `times` (T,) float64 seconds, optional group `extras` with one (T, k) dataset per
extra, and the clip's attributes (see attrs.py).
"""
from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from feature_store.attrs import read_attrs, write_attrs
from feature_store.clip_ids import canonical_id
from feature_store.fsutil import fsync_dir
from feature_store.layout import ItemLayout
from feature_store.names import decode_id, encode_id, shard_name, temp_name

log = logging.getLogger(__name__)
FORMAT = "eri-store/1"


def open_h5(path: Path) -> h5py.File:
    """Open a published shard read-only. HDF5's own file locking is off: shards are immutable
    once published, and flock-based HDF5 locking fails on many network file systems."""
    return h5py.File(path, "r", locking=False)


def shard_ids(path: Path) -> list[str]:
    """Clip ids as stored in a published shard (their group names, decoded)."""
    with open_h5(path) as f:
        clips = f.get("clips")
        return [decode_id(name) for name in clips] if clips is not None else []


class StoredItem:
    """One clip in a published shard: shapes and attributes without reading the arrays."""

    def __init__(self, group: h5py.Group) -> None:
        self._group = group
        self._dataset: h5py.Dataset | None = None

    @property
    def _data(self) -> h5py.Dataset:
        if self._dataset is None:  # opened once: shape, dtype and the read share it
            self._dataset = self._group["data"]
        return self._dataset

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def times_shape(self) -> tuple[int, ...]:
        return tuple(self._group["times"].shape)

    def has_arrays(self) -> bool:
        return "data" in self._group and "times" in self._group

    def data(self, dtype: Any = None) -> np.ndarray:
        """The data array, converted to `dtype` while reading when given."""
        ds = self._data
        out = np.empty(ds.shape, dtype=np.dtype(dtype) if dtype is not None else ds.dtype)
        ds.read_direct(out)
        return out

    def times(self) -> np.ndarray:
        return self._group["times"][()]

    def attrs(self) -> dict[str, Any]:
        return read_attrs(self._group)

    def attr(self, key: str, default: Any = None) -> Any:
        """One attribute as stored (numbers and strings), without decoding the others."""
        value = self._group.attrs.get(key, default)
        return value.item() if isinstance(value, np.generic) else value

    def extras(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """name -> (shape, dtype) of each extra array."""
        group = self._group.get("extras")
        return {name: (tuple(ds.shape), ds.dtype) for name, ds in group.items()} if group is not None else {}

    def extra(self, name: str) -> np.ndarray:
        return self._group["extras"][name][()]


class ShardFile:
    """A published shard opened read-only (cheap to keep open; close() or use as a context manager)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = open_h5(self.path)
        self._clips = self._file.get("clips")
        if not isinstance(self._clips, h5py.Group):
            self._file.close()
            raise OSError(f"{self.path}: not a shard (no 'clips' group)")

    def stored_names(self) -> list[str]:
        """Clip ids exactly as stored (older stores may hold `[00001]`)."""
        return [decode_id(name) for name in self._clips]

    def item(self, stored_id: str) -> StoredItem:
        return StoredItem(self._clips[encode_id(stored_id)])

    @property
    def is_open(self) -> bool:
        return bool(self._file.id.valid)

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> "ShardFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ShardWriter:
    """Collects clips into a temporary HDF5 file; `commit()` publishes it as `shard-*.h5`.

    The temporary is flock'ed for the writer's whole life so that cleaners never remove the
    file of a live writer (see FeatureDir.clean_temporaries)."""

    def __init__(self, directory: Path, layout: ItemLayout, root_attrs: Mapping[str, Any]):
        self.directory = directory
        self.layout = layout
        self.temp_path = directory / temp_name()
        self.path: Path | None = None  # the published shard, after commit()
        self.ids: list[str] = []
        self._lock_fd = os.open(self.temp_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._file = h5py.File(self.temp_path, "w", locking=False)
            self._file.attrs.update({"format": FORMAT, **root_attrs})
            self._clips = self._file.create_group("clips")
        except BaseException:
            self._cleanup()
            raise

    def add(self, clip_id: str, data: Any, times: Any, attrs: Mapping[str, Any] | None = None,
            extras: Mapping[str, Any] | None = None) -> None:
        """Add one clip: data (T, dim) (or the spec's item shape), times (T,) seconds. The clip is
        stored under its canonical id (`[00001]` -> `00001`)."""
        clip_id = canonical_id(clip_id)
        key = encode_id(clip_id)
        if key in self._clips:
            raise ValueError(f"clip {clip_id!r} added twice to the same shard")
        arr, t = self.layout.prepare(clip_id, data, times)
        extra_arrays = {}
        for name, value in (extras or {}).items():
            x = np.asarray(value)
            if x.ndim == 0 or x.shape[0] != arr.shape[0]:
                raise ValueError(f"clip {clip_id!r}: extra {name!r} has shape {x.shape}, "
                                 f"expected ({arr.shape[0]}, ...)")
            extra_arrays[name] = x.astype(np.float32) if x.dtype == np.float64 else x
        group = self._clips.create_group(key)
        try:
            group.attrs["clip_id"] = clip_id
            write_attrs(group, attrs or {})
            kwargs = self._dataset_options(arr)
            group.create_dataset("data", data=arr, **kwargs)
            group.create_dataset("times", data=t)
            if extra_arrays:
                xg = group.create_group("extras")
                for name, x in extra_arrays.items():
                    xg.create_dataset(name, data=x)
        except BaseException:
            if key in self._clips:  # keep the shard consistent if a caller catches and goes on
                del self._clips[key]
            raise
        self.ids.append(clip_id)

    def copy_clip(self, source: StoredItem, clip_id: str) -> None:
        """Copy a clip group verbatim from another shard (used by compact: identical arrays),
        under the canonical id (groups of older stores named `[00001]` become `00001`)."""
        clip_id = canonical_id(clip_id)
        key = encode_id(clip_id)
        if key in self._clips:
            raise ValueError(f"clip {clip_id!r} added twice to the same shard")
        source._group.file.copy(source._group, self._clips, name=key)
        self.ids.append(clip_id)

    def _dataset_options(self, arr: np.ndarray) -> dict[str, Any]:
        if not self.layout.compression:
            return {}
        return {"compression": self.layout.compression, "chunks": (min(arr.shape[0], 64), *arr.shape[1:])}

    def commit(self, name: str | None = None) -> Path | None:
        """Close, fsync, rename to `name` (default: a fresh shard name), fsync the directory.
        An empty shard is discarded."""
        if not self.ids:
            self.abort()
            return None
        try:
            self._file.close()
            os.fsync(self._lock_fd)
            final = self.directory / (name or shard_name())
            os.replace(self.temp_path, final)
            fsync_dir(self.directory)
        except BaseException:
            self._cleanup()
            raise
        os.close(self._lock_fd)
        self.path = final
        log.debug("published %s (%d clips)", final, len(self.ids))
        return final

    def abort(self) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            if getattr(self, "_file", None) is not None and self._file.id.valid:
                self._file.close()
        finally:
            self.temp_path.unlink(missing_ok=True)
            os.close(self._lock_fd)
