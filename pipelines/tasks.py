"""Turn a plan into tasks: batches of clips of one modality with the jobs each batch needs.

Tasks are sized by cost, not by count, so that no worker idles while another has queued clips:
- a clip's cost is its file size × the seconds of media per byte (the plan's estimate) × the
  worker-seconds per media second of every stage it goes through (decode and each feature), from
  earlier runs' history in the store (pipelines.estimate) or, before any run, DEFAULT_COSTS;
- there are at least TASKS_PER_WORKER tasks per worker (and at most `clips_per_task` clips in a
  task, which bounds a worker's memory), each modality getting tasks in proportion to its cost;
- clips are packed into a modality's tasks longest-first onto the lightest task, and tasks are
  returned most expensive first, so the longest work starts first and the tail is short.
A task's clips are batched together for the network (frames of several clips share a batch).
"""
from __future__ import annotations

import heapq
import math
from typing import Mapping

from pipelines.plan import Plan
from pipelines.settings import ExtractSettings
from pipelines.stages import JobRef, Task

TASKS_PER_WORKER = 4
DECODE = {"video": "decode:video", "audio": "decode:audio"}
# worker-seconds per media second on one 2-core laptop-class CPU, used until a run has been timed
DEFAULT_COSTS = {"decode:video": 0.08, "faces": 0.06, "decode:audio": 0.01}
DEFAULT_FEATURE_COST = {"video": 0.05, "audio": 0.02}


def _ref(job, clip_ids: tuple[str, ...]) -> JobRef:
    return JobRef(job.name, job.fingerprint, job.config, job.spec_json, job.weights_path, clip_ids, job.weights)


def clip_costs(plan: Plan, modality: str, costs: Mapping[str, float],
               seconds_per_byte: float | None) -> dict[str, float]:
    """Estimated worker-seconds of every clip this modality's jobs have to do."""
    jobs = [j for j in plan.jobs if j.modality == modality and j.todo]
    rate = seconds_per_byte or 1.0  # the scale cancels within a modality when nothing was probed
    out: dict[str, float] = {}
    for job in jobs:
        stage = costs.get(job.name, DEFAULT_COSTS.get(job.name, DEFAULT_FEATURE_COST[modality]))
        for clip_id in job.todo:
            size = (plan.sources.get(clip_id) or (1, 0.0))[0]
            out[clip_id] = out.get(clip_id, 0.0) + max(size, 1) * rate * stage
    decode = costs.get(DECODE[modality], DEFAULT_COSTS[DECODE[modality]])
    for clip_id in out:  # decoded once per task, whatever the number of features
        size = (plan.sources.get(clip_id) or (1, 0.0))[0]
        out[clip_id] += max(size, 1) * rate * decode
    return out


def pack(costs: Mapping[str, float], bins: int) -> list[list[str]]:
    """Longest-processing-time-first packing of clips into `bins` groups of similar total cost."""
    heap = [(0.0, k, []) for k in range(bins)]
    for clip_id in sorted(costs, key=lambda c: (-costs[c], c)):
        load, k, members = heapq.heappop(heap)
        members.append(clip_id)
        heapq.heappush(heap, (load + costs[clip_id], k, members))
    return [sorted(members) for _, _, members in sorted(heap, key=lambda b: -b[0]) if members]


def make_tasks(plan: Plan, settings: ExtractSettings, store_root: str, workers: int | None = None,
               costs: Mapping[str, float] | None = None, seconds_per_byte: float | None = None) -> list[Task]:
    costs = dict(costs or {})
    per_modality = {m: clip_costs(plan, m, costs, seconds_per_byte) for m in ("video", "audio")}
    per_modality = {m: c for m, c in per_modality.items() if c}
    total = sum(sum(c.values()) for c in per_modality.values()) or 1.0
    wanted = TASKS_PER_WORKER * max(1, workers or 1)
    tasks: list[tuple[float, Task]] = []
    for modality, clip_cost in per_modality.items():
        share = sum(clip_cost.values()) / total
        bins = max(math.ceil(len(clip_cost) / settings.clips_per_task), round(share * wanted), 1)
        for batch in pack(clip_cost, min(bins, len(clip_cost))):
            tasks.append((sum(clip_cost[c] for c in batch), _task(plan, settings, store_root, modality, batch)))
    return [t for _, t in sorted(tasks, key=lambda ct: -ct[0])]


def _task(plan: Plan, settings: ExtractSettings, store_root: str, modality: str, batch: list[str]) -> Task:
    # Every clip is either cached, failed or to do for `faces`, so a backbone's clip whose crops
    # are missing is in faces.todo and gets them detected in the same task.
    jobs = [j for j in plan.jobs if j.modality == modality and j.todo]
    todo = {j.name: set(j.todo) for j in jobs}
    refs = tuple(_ref(j, tuple(c for c in batch if c in todo[j.name])) for j in jobs)
    faces = plan.job("faces")
    return Task(store_root=store_root, modality=modality, clips=tuple((c, str(plan.clips[c].path)) for c in batch),
                jobs=tuple(r for r in refs if r.clip_ids),
                faces=_ref(faces, ()) if (modality == "video" and faces) else None,
                sampling=settings.sampling.as_dict(), device=settings.device, batch_size=settings.batch_size,
                missing_audio=settings.missing_audio, torch_threads=settings.torch_threads,
                prefetch=settings.prefetch, audio_stream=settings.audio_stream)
