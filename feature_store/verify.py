"""`verify`: every shard opens; every item is finite and of the declared shape and dtype."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from feature_store.clip_ids import canonical_id
from feature_store.feature_dir import FeatureDir
from feature_store.layout import ItemLayout
from feature_store.shard import ShardFile, StoredItem


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    shards: int = 0
    clips: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_clip(where: str, item: StoredItem, layout: ItemLayout, shapes: Counter) -> list[str]:
    if not item.has_arrays():
        return [f"{where}: missing 'data' or 'times'"]
    shape, dtype, times_shape = item.shape, item.dtype, item.times_shape
    problems = []
    problem = layout.shape_problem(shape, dtype)
    if problem:
        problems.append(f"{where}: {problem}")
    shapes[shape[1:]] += 1
    if times_shape != (shape[0] if shape else -1,):
        problems.append(f"{where}: times shape {times_shape} does not match data shape {shape}")
    if dtype.kind == "f" and not np.isfinite(item.data()).all():
        problems.append(f"{where}: data has NaN/inf")
    times = item.times()
    if times.dtype.kind != "f" or not np.isfinite(times).all():
        problems.append(f"{where}: times are not finite floats")
    for name, (extra_shape, extra_dtype) in item.extras().items():
        if extra_shape[:1] != shape[:1]:
            problems.append(f"{where}: extra {name!r} shape {extra_shape} does not match T={shape[0]}")
        elif extra_dtype.kind == "f" and not np.isfinite(item.extra(name)).all():
            problems.append(f"{where}: extra {name!r} has NaN/inf")
    return problems


def _check_shard(shard: Path, layout: ItemLayout, report: VerifyReport, seen: Counter, shapes: Counter) -> None:
    try:
        with ShardFile(shard) as f:
            for stored in f.stored_names():
                clip_id = canonical_id(stored)
                seen[clip_id] += 1
                report.clips += 1
                report.problems.extend(_check_clip(f"{shard.name}:{clip_id}", f.item(stored), layout, shapes))
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        report.problems.append(f"{shard}: cannot be read ({type(exc).__name__}: {exc})")


def verify_dir(fd: FeatureDir, report: VerifyReport | None = None) -> VerifyReport:
    report = report or VerifyReport()
    label = f"{fd.feature}@{fd.fingerprint}"
    try:
        layout = fd.layout
    except ValueError as exc:
        report.problems.append(f"{fd.spec_path}: {exc}")
        return report
    seen: Counter = Counter()
    shapes: Counter = Counter()
    shards = fd.shards()
    report.shards += len(shards)
    for shard in shards:
        _check_shard(shard, layout, report, seen, shapes)
    dim_checked = layout.dim is not None and all(len(s) == 1 for s in shapes)  # each item already checked
    if layout.item_shape is None and len(shapes) > 1 and not dim_checked:
        report.problems.append(f"{label}: clips have different row shapes {dict(shapes)}")
    dups = [c for c, n in seen.items() if n > 1]
    if dups:
        report.info.append(f"{label}: {len(dups)} clip(s) in more than one shard (newest shard wins; "
                           f"`eri-store compact` drops the rest), e.g. {sorted(dups)[:3]}")
    temps = fd.temporaries()
    if temps:
        report.info.append(f"{label}: {len(temps)} unpublished temporary file(s) (ignored by readers)")
    return report


def verify_dirs(dirs: list[FeatureDir]) -> VerifyReport:
    report = VerifyReport()
    for fd in dirs:
        verify_dir(fd, report)
    return report
