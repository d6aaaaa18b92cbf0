"""One (feature, fingerprint) directory: spec.json, published shards, errors.jsonl, temporaries.

Rules kept here:
- Only `shard-*.h5` files are read; names sort in publication order and, when a clip is in
  several shards, the newest (last in name order) wins.
- A temporary `.tmp-shard-*.h5` is removed by `clean_temporaries` only when no process holds
  its flock AND (its creator ran on this host and that pid is gone, OR it is older than
  `stale_after` seconds, default 15 min — the guard for writers on other hosts sharing the store,
  whose pid we cannot check). A live writer therefore never loses its temporary.
- Clip ids are canonical (feature_store/clip_ids.py). A shard written before that rule may hold
  `[00001]`: the index lists it as `00001` and remembers the stored spelling for group lookups;
  `eri-store compact` rewrites such groups under the canonical name.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from feature_store.clip_ids import canonical_id
from feature_store.errors_log import append_error, latest_errors
from feature_store.fingerprint import canonical_json
from feature_store.fsutil import atomic_write_bytes, is_locked, pid_alive
from feature_store.layout import ItemLayout
from feature_store.names import SHARD_RE, TEMP_PREFIX, temp_owner, this_host
from feature_store.shard import ShardWriter, shard_ids

log = logging.getLogger(__name__)
STALE_AFTER = 15 * 60
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_IDS_CACHE: dict[tuple[str, int, int, int], ShardIds] = {}  # published shards never change


def check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(f"invalid {kind} {value!r}: use letters, digits, '_', '-', '.'")
    return value


@dataclass(frozen=True)
class ShardIds:
    """The clips of one published shard: canonical ids, and the stored spelling of those a
    version before the canonical-id rule wrote differently (e.g. `[00001]`; usually empty)."""
    ids: list[str]
    stored: dict[str, str]


def cached_shard_ids(path: Path) -> ShardIds:
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    entry = _IDS_CACHE.get(key)
    if entry is None:
        if len(_IDS_CACHE) > 200_000:
            _IDS_CACHE.clear()
        raw = shard_ids(path)
        ids = [canonical_id(c) for c in raw]
        entry = _IDS_CACHE[key] = ShardIds(ids, {c: r for c, r in zip(ids, raw) if c != r})
    return entry


def locate_clips(shards: list[Path], ids_of: Callable[[Path], ShardIds] = cached_shard_ids
                 ) -> tuple[dict[str, Path], dict[str, str]]:
    """(canonical id -> the shard holding its winning copy, canonical id -> stored spelling where
    they differ) over `shards` in publication order. `ids_of` raises FileNotFoundError for a
    shard that vanished (compact passes one that treats it as empty)."""
    where: dict[str, Path] = {}
    stored: dict[str, str] = {}
    for shard in shards:
        entry = ids_of(shard)
        where.update(dict.fromkeys(entry.ids, shard))
        if stored:  # a newer copy under the canonical spelling replaces an old one
            for clip_id in entry.ids:
                stored.pop(clip_id, None)
        stored.update(entry.stored)
    return where, stored


class FeatureDir:
    def __init__(self, path: Path, feature: str, fingerprint: str):
        self.path = path
        self.feature = check_name("feature name", feature)
        self.fingerprint = check_name("fingerprint", fingerprint)
        self.spec_path = path / "spec.json"
        self.errors_path = path / "errors.jsonl"

    # -- spec ---------------------------------------------------------------------------------
    def ensure(self, spec: dict[str, Any] | None) -> "FeatureDir":
        """Create the directory and spec.json (atomically, only if absent)."""
        if spec is None:
            if not self.spec_path.exists():
                raise FileNotFoundError(f"{self.spec_path} does not exist and no spec was given")
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.spec_path.exists():
            meta = {"format": "eri-store/1", "feature": self.feature, "fingerprint": self.fingerprint,
                    "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "spec": json.loads(canonical_json(spec))}
            atomic_write_bytes(self.spec_path, json.dumps(meta, indent=2, sort_keys=True).encode())
        elif canonical_json(self.spec) != canonical_json(spec):
            log.warning("%s: stored spec differs from the one given; keeping the stored one", self.spec_path)
        self.clean_temporaries()
        return self

    @property
    def meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.spec_path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ValueError(f"{self.spec_path}: not valid JSON ({exc})") from None

    @property
    def spec(self) -> dict[str, Any]:
        return self.meta.get("spec", {})

    @property
    def layout(self) -> ItemLayout:
        return ItemLayout.from_spec(self.spec)

    # -- shards -------------------------------------------------------------------------------
    def shards(self) -> list[Path]:
        """Published shards in publication order (oldest first)."""
        try:
            names = [e.name for e in os.scandir(self.path) if SHARD_RE.match(e.name)]
        except FileNotFoundError:
            return []
        return [self.path / n for n in sorted(names)]

    def temporaries(self) -> list[Path]:
        try:
            return sorted(self.path / e.name for e in os.scandir(self.path) if e.name.startswith(TEMP_PREFIX))
        except FileNotFoundError:
            return []

    def index(self) -> dict[str, Path]:
        """canonical clip id -> the shard that holds it (newest shard wins for duplicates)."""
        return self.locate()[0]

    def locate(self) -> tuple[dict[str, Path], dict[str, str]]:
        """(index, stored spellings): see `locate_clips`; group names come from the stored spelling.

        If a listed shard vanishes while being read (a concurrent compact removed it after
        publishing the merged shard), the listing is taken again so no clip is ever missed."""
        for _ in range(100):
            try:
                return locate_clips(self.shards())
            except FileNotFoundError:
                continue
        raise RuntimeError(f"{self.path}: shards keep disappearing while listing them")

    def completed(self) -> set[str]:
        """Canonical ids of the clips present in whole (published) shards."""
        return set(self.index())

    def failed(self) -> dict[str, dict[str, Any]]:
        """Latest error record per clip, for clips not completed since."""
        errors = {canonical_id(c): r for c, r in latest_errors(self.errors_path).items()}
        if not errors:
            return {}
        done = self.completed()
        return {c: r for c, r in errors.items() if c not in done}

    @contextlib.contextmanager
    def open_shard(self) -> Iterator[ShardWriter]:
        """Write clips into a new shard; published atomically on normal exit, discarded on error."""
        self.path.mkdir(parents=True, exist_ok=True)
        writer = ShardWriter(self.path, self.layout, {"feature": self.feature, "fingerprint": self.fingerprint})
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    def record_error(self, clip_id: str, reason: str, **info: Any) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        append_error(self.errors_path, canonical_id(clip_id), reason, info)

    def clean_temporaries(self, stale_after: float = STALE_AFTER) -> list[Path]:
        """Remove temporaries left by dead writers (rule in the module docstring)."""
        removed, now, host = [], time.time(), this_host()
        for tmp in self.temporaries():
            owner = temp_owner(tmp.name)
            try:
                age = now - tmp.stat().st_mtime
            except FileNotFoundError:
                continue
            dead_local = owner is not None and owner[0] == host and not pid_alive(owner[1])
            if (dead_local or age > stale_after) and not is_locked(tmp):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
                log.info("removed leftover temporary %s", tmp)
        return removed

    def size_bytes(self) -> int:
        total = 0
        for shard in self.shards():
            with contextlib.suppress(FileNotFoundError):
                total += shard.stat().st_size
        return total
