"""How much work a plan is: media seconds and, when earlier runs were timed, wall time.

Media seconds come from file sizes (already known from planning) scaled by the seconds-per-byte
of a few probed clips (container headers only), so the estimate costs milliseconds. Each run
records per stage (video/audio decoding, each feature) the worker-seconds it spent per second
of media in `STORE/.eri-extract/throughput.json`; the next plan multiplies by those costs.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pipelines.freshness import private_dir
from pipelines.plan import Plan

log = logging.getLogger(__name__)

DECODE = {"video": "decode:video", "audio": "decode:audio"}


@dataclass
class WorkEstimate:
    clips: int                   # distinct clips with something to compute
    bytes: int
    media_seconds: float | None  # None when no clip could be probed
    probed: int
    worker_seconds: float | None  # None without a timed earlier run of every stage involved
    workers: int | None          # parallel workers the wall time is divided by (None: unknown)
    seconds_per_byte: float | None = None  # media seconds per file byte of the probed clips

    @property
    def wall_seconds(self) -> float | None:
        if self.worker_seconds is None or not self.workers:
            return None
        return self.worker_seconds / self.workers

    def describe(self) -> str:
        if not self.clips:
            return "nothing to compute"
        parts = [f"{self.clips} clip(s), {self.bytes / 2**20:,.1f} MiB"]
        if self.media_seconds is not None:
            parts.append(f"≈ {_duration(self.media_seconds)} of media (sizes scaled by {self.probed} probed clip(s))")
        if self.wall_seconds is not None:
            parts.append(f"≈ {_duration(self.wall_seconds)} with {self.workers} worker(s) at earlier runs' speed")
        elif self.worker_seconds is not None:
            parts.append(f"≈ {_duration(self.worker_seconds)} of worker time at earlier runs' speed")
        else:
            parts.append("no time estimate yet (the first run records its speed)")
        return "; ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def seconds_per_byte(paths: list[str], limit: int) -> tuple[float | None, int]:
    """Media seconds per file byte over up to `limit` clips spread through `paths`."""
    from extract.media import MediaError, probe

    if not paths or limit <= 0:
        return None, 0
    step = max(1, len(paths) // limit)
    seconds = size = probed = 0
    for path in paths[::step][:limit]:
        try:
            info = probe(path)
            nbytes = os.path.getsize(path)
        except (MediaError, OSError):
            continue
        if info.duration > 0 and nbytes > 0:
            seconds, size, probed = seconds + info.duration, size + nbytes, probed + 1
    return (seconds / size if size else None), probed


def estimate_work(plan: Plan, store_root: Path, workers: int | None, probe_limit: int = 16) -> WorkEstimate:
    todo = {c for job in plan.jobs for c in job.todo}
    sizes = {c: (plan.sources.get(c) or (0, 0.0))[0] for c in todo}
    ordered = sorted(todo)
    rate, probed = seconds_per_byte([str(plan.clips[c].path) for c in ordered], probe_limit)
    media = None if rate is None else sum(sizes.values()) * rate
    worker_seconds = None
    costs = load_costs(store_root)
    if rate is not None:
        stages: dict[str, set[str]] = {}
        for job in plan.jobs:
            stages[job.name] = set(job.todo)
            if job.modality == "audio" or job.name == "faces":  # backbones read cached crops
                stages.setdefault(DECODE[job.modality], set()).update(job.todo)
        needed = {s: ids for s, ids in stages.items() if ids}
        if needed and all(s in costs for s in needed):
            worker_seconds = sum(costs[s] * sum(sizes[c] for c in ids) * rate for s, ids in needed.items())
    return WorkEstimate(len(todo), sum(sizes.values()), media, probed, worker_seconds, workers, rate)


def _history_path(store_root: Path) -> Path:
    return private_dir(store_root) / "throughput.json"


def load_costs(store_root: Path) -> dict[str, float]:
    """Worker-seconds per media second, per stage, from earlier runs."""
    try:
        data = json.loads(_history_path(store_root).read_text())
        return {k: float(v) for k, v in data.get("cost", {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def record_costs(store_root: Path, seconds: Mapping[str, float], media: Mapping[str, float]) -> None:
    """Blend this run's per-stage cost (seconds / media seconds) into the history, half and half."""
    fresh = {s: seconds[s] / media[s] for s in seconds if media.get(s, 0) > 0}
    if not fresh:
        return
    costs = load_costs(store_root)
    for stage, cost in fresh.items():
        costs[stage] = cost if stage not in costs else 0.5 * (costs[stage] + cost)
    path = _history_path(store_root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"cost": costs}, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only store still extracts; the estimate is a convenience
        log.warning("cannot record throughput in %s: %s", path, exc)
