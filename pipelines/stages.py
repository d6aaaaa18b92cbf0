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
from pipelines.stage_io import fail_clips, feature_dir, load_crops, reason, run_isolated, write_outputs
from pipelines.task_types import FACE_QA_KEYS, ClipContext, JobRef, Task, TaskResult
from pipelines.worker import extractor_for, keep_freed_memory, set_torch_threads

__all__ = ["JobRef", "Task", "TaskResult", "run_task"]
log = logging.getLogger(__name__)

AUDIO_RATE = 16000


def run_task(task: Task) -> TaskResult:
    result = TaskResult(worker=f"{os.uname().nodename}:{os.getpid()}")
    start = time.perf_counter()
    set_torch_threads(task.torch_threads)
    keep_freed_memory()
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


def _loaded(task: Task, store: FeatureStore, job: JobRef, ids: list[str], ctx: ClipContext, result: TaskResult):
    """(extractor, lock), or None after failing `ids` for this feature alone if its model cannot be built."""
    try:
        return _extractor(task, job, result)
    except Exception as exc:  # noqa: BLE001 — a broken model fails its own feature, not the others
        why = f"{job.name}: cannot load the model: {reason(exc)}"
        log.error("%s", why)
        fail_clips(store, job, ids, ctx, result, {}, default=why)
        return None


# -- video ---------------------------------------------------------------------------------------
def _spec(job: JobRef):
    from extract.catalog import catalog

    return catalog().get(job.name)


def _sampling_of(job: JobRef, task: Task):
    """The frames a frames-input feature reads: its config's own `sampling` (pose: 2 fps), else the run's."""
    from extract.media import Sampling

    own = getattr(_spec(job).resolve_config(job.config), "sampling", None)
    return own or Sampling(**task.sampling)


def _run_video(task: Task, store: FeatureStore, jobs: list[JobRef], ctx: ClipContext, result: TaskResult) -> None:
    frame_jobs = [j for j in jobs if _spec(j).input == "frames"]  # faces, pose: read decoded frames
    backbones = [j for j in jobs if j not in frame_jobs]           # read the cached face crops
    face_job = next((j for j in frame_jobs if j.name == "faces"), None)
    to_detect = set(face_job.clip_ids) if face_job else set()
    crops: dict[str, FeatureOutput] = {}
    cached = sorted({c for j in backbones for c in j.clip_ids} - to_detect)
    if cached:
        load_crops(task, cached, crops, ctx)
    if frame_jobs:
        outputs, failures = _frames_stage(task, store, frame_jobs, ctx, result)
        for job in frame_jobs:
            if job.name in outputs:
                write_outputs(store, job, outputs[job.name], ctx, result, failures[job.name])
        crops.update(outputs.get("faces", {}))
        for clip_id in to_detect - crops.keys():
            ctx.failures.setdefault(clip_id, failures.get("faces", {}).get(
                clip_id, "no face crops: the faces stage failed for this clip"))
    for job in backbones:
        ids = [c for c in job.clip_ids if c in crops]
        loaded = _loaded(task, store, job, ids, ctx, result)
        if loaded is None:
            fail_clips(store, job, [c for c in job.clip_ids if c not in crops], ctx, result, ctx.failures)
            continue
        extractor, lock = loaded
        failures: dict[str, str] = {}
        with lock, result.timed(job.name):
            outputs = run_isolated(
                lambda batch: extractor.run([crops[c].data for c in batch], [crops[c].times for c in batch]),
                ids, failures)
        write_outputs(store, job, outputs, ctx, result, failures)
    result.media_seconds += sum(ctx.durations.get(c, 0.0) for c in {c for j in jobs for c in j.clip_ids})


def _frames_stage(task: Task, store: FeatureStore, jobs: list[JobRef], ctx: ClipContext, result: TaskResult
                  ) -> tuple[dict[str, dict[str, FeatureOutput]], dict[str, dict[str, str]]]:
    """Decode each clip once for every frames-input feature (each gets the frames its sampling
    selects; the next clip decodes in a thread meanwhile) and run them: ({job: {clip: output}},
    {job: {clip: why it failed}}). A feature whose model cannot load is failed and left out."""
    from extract.media import decode_frames_multi

    models = {}
    for job in jobs:
        loaded = _loaded(task, store, job, list(job.clip_ids), ctx, result)
        if loaded is None and job.name == "faces":
            ctx.failures.update(dict.fromkeys(job.clip_ids, "no face crops: the faces model could not be loaded"))
        if loaded is not None:
            models[job.name] = loaded
    jobs = [j for j in jobs if j.name in models]
    samplings = {j.name: _sampling_of(j, task) for j in jobs}
    wanted = {c: [j for j in jobs if c in j.clip_ids] for j in jobs for c in j.clip_ids}
    order = [c for c, _ in task.clips if c in wanted]

    def decode(clip_id: str):
        distinct = list(dict.fromkeys(samplings[j.name] for j in wanted[clip_id]))
        start = time.perf_counter()
        try:
            frames = decode_frames_multi(ctx.paths[clip_id], distinct)
            return dict(zip(distinct, frames)), time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 — any per-clip failure is recorded, never fatal
            return exc, time.perf_counter() - start

    outputs = {j.name: {} for j in jobs}
    failures: dict[str, dict[str, str]] = {j.name: {} for j in jobs}
    for clip_id, (decoded, seconds) in _in_order(decode, order, task.prefetch):
        result.stage_seconds["decode:video"] = result.stage_seconds.get("decode:video", 0.0) + seconds
        if isinstance(decoded, BaseException):
            ctx.failures[clip_id] = reason(decoded)
            continue
        first = next(iter(decoded.values()))
        ctx.durations[clip_id] = first.duration
        _note_damage(clip_id, first, ctx, result)
        result.frames += max(len(f.times) for f in decoded.values())
        result.stage_media["decode:video"] = result.stage_media.get("decode:video", 0.0) + first.duration
        for job in wanted[clip_id]:
            frames = decoded[samplings[job.name]]
            extractor, lock = models[job.name]
            try:
                with lock, result.timed(job.name):
                    out = extractor.run([frames])[0]
            except Exception as exc:  # noqa: BLE001
                failures[job.name][clip_id] = reason(exc)
                continue
            if job.name == "faces":
                out.qa["fps"] = float(frames.fps)
                ctx.face_qa[clip_id] = {k: out.qa[k] for k in FACE_QA_KEYS if k in out.qa}
            outputs[job.name][clip_id] = out
    return outputs, failures


def _note_damage(clip_id: str, frames, ctx: ClipContext, result: TaskResult) -> None:
    note = frames.damage_note()
    if note:
        ctx.media_attrs.setdefault(clip_id, {}).update(
            frames_lost=int(frames.lost), corrupt_packets=int(frames.corrupt_packets), decode_warning=note)
        result.notes.append({"clip": clip_id, "note": note})


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
                audio = decode_audio(ctx.paths[clip_id], sample_rate=AUDIO_RATE, missing=task.missing_audio,
                                     stream=task.audio_stream)
            except Exception as exc:  # noqa: BLE001
                ctx.failures[clip_id] = reason(exc)
                continue
            waves[clip_id], ctx.durations[clip_id] = audio.samples, audio.duration
            _note_audio(clip_id, audio, ctx, result)
    result.stage_media["decode:audio"] = sum(ctx.durations.values())
    for job in jobs:
        ids = [c for c in job.clip_ids if c in waves]
        loaded = _loaded(task, store, job, ids, ctx, result)
        if loaded is None:
            fail_clips(store, job, [c for c in job.clip_ids if c not in waves], ctx, result, ctx.failures)
            continue
        extractor, lock = loaded
        failures: dict[str, str] = {}
        with lock, result.timed(job.name):
            outputs = run_isolated(lambda batch: extractor.run([waves[c] for c in batch], AUDIO_RATE),
                                   ids, failures)
        write_outputs(store, job, outputs, ctx, result, failures)
    result.media_seconds += sum(ctx.durations.values())


def _note_audio(clip_id: str, audio, ctx: ClipContext, result: TaskResult) -> None:
    """Which audio stream was used (stored on the clip's entries), and damage, as notes."""
    attrs = ctx.media_attrs.setdefault(clip_id, {})
    attrs.update(audio_source=audio.source, audio_stream=int(audio.stream), audio_streams=int(audio.streams))
    if audio.streams > 1:
        result.notes.append({"clip": clip_id, "note": f"{audio.streams} audio streams; used #{audio.stream} "
                                                      "(--audio-stream N for another)"})
    if audio.corrupt_packets:
        attrs.update(audio_corrupt_packets=int(audio.corrupt_packets))
        result.notes.append({"clip": clip_id, "note": f"{audio.corrupt_packets} corrupt audio packet(s) "
                                                      "replaced by silence"})
