"""Worker side: one task = a batch of clips of one modality and every feature they need.

A task first drops the clips whose entries are already complete and current (a retried task,
after its worker died, must not write duplicates). It decodes each clip once, reuses cached face
crops when they exist, runs every model over all its clips together (frames/windows of many clips
share batches) and writes one shard per feature — the store's one-writer-per-file rule; arrays
never travel back to the client. A clip that fails is recorded in the feature's errors.jsonl and
the rest of the batch is still written. Video is streamed clip by clip through decode → face
detection (decoding the next clip in a thread meanwhile), so a task holds the crops of its clips
but the full frames of at most two.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Callable, Iterator

import numpy as np

from extract.specs import FeatureOutput
from feature_store import FeatureStore
from pipelines.freshness import split_by_freshness
from pipelines.stage_io import feature_dir, load_crops, reason, run_isolated, write_outputs
from pipelines.task_types import FACE_QA_KEYS, ClipContext, JobRef, Task, TaskResult
from pipelines.worker import extractor_for, set_torch_threads

__all__ = ["JobRef", "Task", "TaskResult", "run_task"]
log = logging.getLogger(__name__)

AUDIO_RATE = 16000


def run_task(task: Task) -> TaskResult:
    result = TaskResult(worker=f"{os.uname().nodename}:{os.getpid()}")
    start = time.perf_counter()
    set_torch_threads(task.torch_threads)
    store = FeatureStore(task.store_root)
    ctx = ClipContext(task.clips)
    jobs = _remaining(task, ctx, result)
    if jobs:
        (_run_video if task.modality == "video" else _run_audio)(task, store, jobs, ctx, result)
    result.seconds = time.perf_counter() - start
    return result


def _remaining(task: Task, ctx: ClipContext, result: TaskResult) -> list[JobRef]:
    """Jobs restricted to clips without a current entry (an earlier attempt may have written some)."""
    kept = []
    for job in task.jobs:
        current, _ = split_by_freshness(feature_dir(task, job), {c: ctx.paths[c] for c in job.clip_ids})
        if current:
            result.already_done[job.name] = len(current)
        remaining = tuple(c for c in job.clip_ids if c not in current)
        if remaining:
            kept.append(replace(job, clip_ids=remaining))
    return kept


def _extractor(task: Task, job: JobRef, result: TaskResult):
    with result.timed(f"load:{job.name}"):  # ~0 once this process has built it
        return extractor_for(job.name, job.fingerprint, job.config, job.weights_path, task.device, task.batch_size,
                             job.weights)


# -- video ---------------------------------------------------------------------------------------
def _run_video(task: Task, store: FeatureStore, jobs: list[JobRef], ctx: ClipContext, result: TaskResult) -> None:
    face_job = next((j for j in jobs if j.name == "faces"), None)
    frame_jobs = [j for j in jobs if j.name != "faces" and _spec(j).input == "frames"]
    backbones = [j for j in jobs if j.name != "faces" and j not in frame_jobs]
    to_detect = set(face_job.clip_ids) if face_job else set()
    crops: dict[str, FeatureOutput] = {}
    cached = sorted({c for j in backbones for c in j.clip_ids} - to_detect)
    if cached:
        load_crops(task, cached, crops, ctx)
    if face_job is not None:
        outputs = _detect(task, face_job, ctx, result)
        crops.update(outputs)
        write_outputs(store, face_job, outputs, ctx, result)
    for job in frame_jobs:
        failures = {}
        write_outputs(store, job, _on_own_frames(task, job, ctx, result, failures), ctx, result, failures)
    for job in backbones:
        ids = [c for c in job.clip_ids if c in crops]
        extractor, lock = _extractor(task, job, result)
        failures: dict[str, str] = {}
        with lock, result.timed(job.name):
            outputs = run_isolated(
                lambda batch: extractor.run([crops[c].data for c in batch], [crops[c].times for c in batch]),
                ids, failures)
        write_outputs(store, job, outputs, ctx, result, failures)
    result.media_seconds += sum(ctx.durations.get(c, 0.0) for c in {c for j in jobs for c in j.clip_ids})


def _detect(task: Task, job: JobRef, ctx: ClipContext, result: TaskResult) -> dict[str, FeatureOutput]:
    from extract.media import Sampling, decode_frames

    sampling = Sampling(**task.sampling)

    def decode(clip_id: str):
        start = time.perf_counter()
        try:
            return decode_frames(ctx.paths[clip_id], sampling), time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 — any per-clip failure is recorded, never fatal
            return exc, time.perf_counter() - start

    detector, lock = _extractor(task, job, result)
    outputs: dict[str, FeatureOutput] = {}
    for clip_id, (frames, seconds) in _in_order(decode, list(job.clip_ids), task.prefetch):
        result.stage_seconds["decode:video"] = result.stage_seconds.get("decode:video", 0.0) + seconds
        if isinstance(frames, BaseException):
            ctx.failures[clip_id] = reason(frames)
            continue
        ctx.durations[clip_id] = frames.duration
        result.frames += len(frames.times)
        result.stage_media["decode:video"] = result.stage_media.get("decode:video", 0.0) + frames.duration
        try:
            with lock, result.timed("faces"):
                out = detector.run([frames])[0]
        except Exception as exc:  # noqa: BLE001
            ctx.failures[clip_id] = reason(exc)
            continue
        out.qa["fps"] = float(frames.fps)
        ctx.face_qa[clip_id] = {k: out.qa[k] for k in FACE_QA_KEYS if k in out.qa}
        outputs[clip_id] = out
    return outputs


def _spec(job: JobRef):
    from extract.catalog import catalog

    return catalog().get(job.name)


def _on_own_frames(task: Task, job: JobRef, ctx: ClipContext, result: TaskResult,
                   failures: dict[str, str]) -> dict[str, FeatureOutput]:
    """A frames-input feature other than faces (e.g. pose): each clip decoded at the sampling its
    config selects (`config.sampling`, else the run's), one clip at a time, failures per clip."""
    from extract.media import Sampling, decode_frames

    config = _spec(job).resolve_config(job.config)
    sampling = getattr(config, "sampling", None) or Sampling(**task.sampling)
    extractor, lock = _extractor(task, job, result)
    outputs: dict[str, FeatureOutput] = {}
    for clip_id in job.clip_ids:
        try:
            with result.timed(f"decode:{job.name}"):
                frames = decode_frames(ctx.paths[clip_id], sampling)
            ctx.durations[clip_id] = frames.duration
            with lock, result.timed(job.name):
                outputs[clip_id] = extractor.run([frames])[0]
        except Exception as exc:  # noqa: BLE001 — any per-clip failure is recorded, never fatal
            failures[clip_id] = reason(exc)
    return outputs


def _in_order(fn: Callable[[str], Any], ids: list[str], prefetch: bool) -> Iterator[tuple[str, Any]]:
    """(id, fn(id)) in order; with prefetch, fn of the next id runs in a thread meanwhile."""
    if not prefetch or len(ids) < 2:
        for clip_id in ids:
            yield clip_id, fn(clip_id)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="eri-decode") as pool:
        pending = pool.submit(fn, ids[0])
        for i, clip_id in enumerate(ids):
            value = pending.result()
            if i + 1 < len(ids):
                pending = pool.submit(fn, ids[i + 1])
            yield clip_id, value


# -- audio ---------------------------------------------------------------------------------------
def _run_audio(task: Task, store: FeatureStore, jobs: list[JobRef], ctx: ClipContext, result: TaskResult) -> None:
    from extract.media import decode_audio

    needed = sorted({c for j in jobs for c in j.clip_ids})
    waves: dict[str, np.ndarray] = {}
    with result.timed("decode:audio"):
        for clip_id in needed:
            try:
                audio = decode_audio(ctx.paths[clip_id], sample_rate=AUDIO_RATE, missing=task.missing_audio)
                waves[clip_id], ctx.durations[clip_id] = audio.samples, audio.duration
            except Exception as exc:  # noqa: BLE001
                ctx.failures[clip_id] = reason(exc)
    result.stage_media["decode:audio"] = sum(ctx.durations.values())
    for job in jobs:
        ids = [c for c in job.clip_ids if c in waves]
        extractor, lock = _extractor(task, job, result)
        failures: dict[str, str] = {}
        with lock, result.timed(job.name):
            outputs = run_isolated(lambda batch: extractor.run([waves[c] for c in batch], AUDIO_RATE),
                                    ids, failures)
        write_outputs(store, job, outputs, ctx, result, failures)
    result.media_seconds += sum(ctx.durations.values())


