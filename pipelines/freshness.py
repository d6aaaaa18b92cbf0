"""Is a stored entry still the one of today's file? Compare the source size/mtime kept with the entry.

Every entry carries its source's `size` and `mtime` (feature_store.source_attrs). A clip whose file
now has another size or mtime was replaced or edited: its entry is stale and the clip is computed
again (the new shard is newer, so it wins; `eri-store compact` drops the old copy).

Reading those attributes costs ~0.3 ms per clip in HDF5, too slow for planning over many clips,
so the planner keeps them per published shard in `STORE/.eri-extract/sources/<feature>@<fp>.json`.
Published shards never change and their names are unique, so a shard's row in that cache never
goes stale; rows of shards that are gone (compacted) are dropped. Workers check the few clips of
their task straight from the shards.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable, Mapping

from feature_store import FeatureDir, FeatureReader

log = logging.getLogger(__name__)

SourceKey = tuple[int, float]  # (size in bytes, mtime in seconds)
PRIVATE_DIR = ".eri-extract"   # the pipeline's own files inside the store (ignored by the store's tools)
MTIME_TOLERANCE = 1e-3


def private_dir(store_root: str | os.PathLike[str]) -> Path:
    return Path(store_root) / PRIVATE_DIR


def stat_source(path: str | os.PathLike[str]) -> SourceKey | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return int(st.st_size), float(st.st_mtime)


def is_current(stored: SourceKey | None, now: SourceKey | None) -> bool:
    """False only when both are known and differ (entries without provenance are kept)."""
    if stored is None or now is None:
        return True
    return stored[0] == now[0] and abs(stored[1] - now[1]) <= MTIME_TOLERANCE


def read_sources(reader: FeatureReader, ids: Iterable[str]) -> dict[str, SourceKey]:
    """(size, mtime) stored with each clip of `ids` that has them."""
    out: dict[str, SourceKey] = {}
    for clip_id in ids:
        item = reader.item(clip_id)
        size, mtime = item.attr("size"), item.attr("mtime")
        if size is not None and mtime is not None:
            out[clip_id] = (int(size), float(mtime))
    return out


def split_by_freshness(fd: FeatureDir, clips: Mapping[str, str]) -> tuple[set[str], set[str]]:
    """(current, stale): the clips of `clips` {id: path} that have an entry, split by freshness."""
    with FeatureReader(fd) as reader:
        present = [c for c in clips if c in reader]
        stored = read_sources(reader, present)
    current, stale = set(), set()
    for clip_id in present:
        ok = is_current(stored.get(clip_id), stat_source(clips[clip_id]))
        (current if ok else stale).add(clip_id)
    return current, stale


class SourceCache:
    """Per-shard {clip: [size, mtime]} of one feature directory, persisted between plans
    (a clip without provenance attributes is kept as null)."""

    def __init__(self, store_root: str | os.PathLike[str], fd: FeatureDir):
        self.path = private_dir(store_root) / "sources" / f"{fd.feature}@{fd.fingerprint}.json"
        self.fd = fd
        self.changed = False
        try:
            self.shards: dict[str, dict[str, list | None]] = json.loads(self.path.read_text())["shards"]
        except (OSError, ValueError, KeyError, TypeError):
            self.shards = {}

    def sources(self, index: Mapping[str, Path]) -> dict[str, SourceKey]:
        """(size, mtime) of every clip in `index` (clip -> the shard holding its winning copy)."""
        live = {p.name for p in index.values()}
        for name in set(self.shards) - live:  # compacted or removed
            del self.shards[name]
            self.changed = True
        missing: dict[str, list[str]] = {}
        for clip_id, shard in index.items():
            if clip_id not in self.shards.get(shard.name, {}):
                missing.setdefault(shard.name, []).append(clip_id)
        if missing:
            self._read(missing)
        out: dict[str, SourceKey] = {}
        for clip_id, shard in index.items():
            value = self.shards.get(shard.name, {}).get(clip_id)
            if value is not None:
                out[clip_id] = (int(value[0]), float(value[1]))
        return out

    def _read(self, missing: Mapping[str, list[str]]) -> None:
        with FeatureReader(self.fd) as reader:
            for name, ids in missing.items():
                try:
                    found = read_sources(reader, ids)
                except (OSError, KeyError) as exc:  # vanished (compacted meanwhile) or unreadable
                    log.warning("%s: cannot read source attributes (%s)", self.fd.path / name, exc)
                    continue
                row = self.shards.setdefault(name, {})
                row.update({c: (list(found[c]) if c in found else None) for c in ids})
                self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"shards": self.shards}, separators=(",", ":")))
        os.replace(tmp, self.path)
        self.changed = False
