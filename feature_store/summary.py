"""Numbers for `eri-store ls` and `info`: clip counts, sizes, T statistics, QA means."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from feature_store.attrs import is_flagged, numeric_qa
from feature_store.feature_dir import FeatureDir
from feature_store.reader import FeatureReader


@dataclass
class DirSummary:
    feature: str
    fingerprint: str
    clips: int
    shards: int
    size_bytes: int
    errors: int
    created: str


def summarize_dir(fd: FeatureDir) -> DirSummary:
    return DirSummary(fd.feature, fd.fingerprint, len(fd.completed()), len(fd.shards()), fd.size_bytes(),
                      len(fd.failed()), str(fd.meta.get("created", "")))


@dataclass
class FeatureInfo:
    clips: int
    row_shapes: dict[str, int]
    dtypes: dict[str, int]
    t_stats: dict[str, float]
    qa_means: dict[str, float] = field(default_factory=dict)
    flagged: int = 0
    extras: dict[str, int] = field(default_factory=dict)


def feature_info(reader: FeatureReader) -> FeatureInfo:
    """Walk every clip's metadata (not its data) and summarise it."""
    lengths, shapes, dtypes = [], defaultdict(int), defaultdict(int)
    qa: dict[str, list[float]] = defaultdict(list)
    extras: dict[str, int] = defaultdict(int)
    flagged = 0
    for clip_id in reader.ids():
        item = reader.item(clip_id)
        lengths.append(item.shape[0])
        shapes[str(item.shape[1:])] += 1
        dtypes[str(item.dtype)] += 1
        for name in item.extras():
            extras[name] += 1
        attrs: dict[str, Any] = item.attrs()
        for key, value in numeric_qa(attrs).items():
            qa[key].append(value)
        flagged += is_flagged(attrs)
    t = np.asarray(lengths, dtype=np.float64)
    t_stats = ({"min": float(t.min()), "median": float(np.median(t)), "mean": float(t.mean()),
                "max": float(t.max())} if t.size else {})
    return FeatureInfo(len(lengths), dict(shapes), dict(dtypes), t_stats,
                       {k: float(np.mean(v)) for k, v in sorted(qa.items())}, flagged, dict(extras))
