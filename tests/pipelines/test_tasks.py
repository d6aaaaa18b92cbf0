"""Task sizing: several tasks per worker, balanced by cost, the most expensive first, memory-bounded."""
from __future__ import annotations

from pathlib import Path

from pipelines.dataset import Clip
from pipelines.plan import FeatureJob, Plan
from pipelines.settings import ExtractSettings
from pipelines.tasks import TASKS_PER_WORKER, make_tasks, pack


def _plan(sizes: dict[str, int], features=(("faces", "video"), ("mfcc", "audio"))) -> Plan:
    clips = {c: Clip(c, Path(f"/data/{c}.mp4")) for c in sizes}
    jobs = [FeatureJob(name, modality, "fp" + name, {}, {"version": "1"}, None, todo=sorted(sizes))
            for name, modality in features]
    return Plan(clips, jobs, {}, {c: (size, 0.0) for c, size in sizes.items()})


def test_pack_balances_cost_longest_first():
    costs = {f"c{i}": float(w) for i, w in enumerate([9, 8, 7, 6, 5, 4, 3, 2, 1, 1])}
    bins = pack(costs, 3)
    loads = sorted(sum(costs[c] for c in b) for b in bins)
    assert sum(loads) == 46 and loads[-1] - loads[0] <= 1
    assert sorted(c for b in bins for c in b) == sorted(costs)


def test_every_worker_gets_several_tasks_and_the_costliest_comes_first():
    sizes = {f"{i:05d}": (1 + i % 5) * 100_000 for i in range(24)}
    settings = ExtractSettings(modality="all", features=(), clips_per_task=8)
    tasks = make_tasks(_plan(sizes), settings, "/store", workers=2)
    video = [t for t in tasks if t.modality == "video"]
    assert len(tasks) >= TASKS_PER_WORKER * 2 and len(video) >= 6  # video costs most, so it gets most tasks
    assert all(len(t.clips) <= 8 for t in tasks)
    done = sorted(c for t in tasks if t.modality == "video" for c, _ in t.clips)
    assert done == sorted(sizes)  # every clip once per modality
    cost = [sum(sizes[c] for c, _ in t.clips) for t in video]
    assert max(cost) <= 1.35 * min(cost)
    assert tasks[0].modality == "video"


def test_clips_per_task_bounds_memory_for_large_runs():
    sizes = {f"{i:05d}": 50_000 for i in range(500)}
    tasks = make_tasks(_plan(sizes, (("faces", "video"),)), ExtractSettings(modality="video", features=(),
                                                                          clips_per_task=8), "/s", workers=2)
    assert len(tasks) == 63 and max(len(t.clips) for t in tasks) == 8


def test_timed_history_moves_work_between_modalities():
    sizes = {f"{i:05d}": 100_000 for i in range(40)}
    settings = ExtractSettings(modality="all", features=(), clips_per_task=40)
    cheap_audio = make_tasks(_plan(sizes), settings, "/s", workers=2)
    costly_audio = make_tasks(_plan(sizes), settings, "/s", workers=2,
                              costs={"mfcc": 5.0, "decode:audio": 1.0, "faces": 0.01, "decode:video": 0.01})
    count = lambda tasks, m: sum(t.modality == m for t in tasks)  # noqa: E731
    assert count(cheap_audio, "audio") < count(costly_audio, "audio")
    assert count(cheap_audio, "video") > count(costly_audio, "video")
