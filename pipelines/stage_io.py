"""Store side of a task: cached face crops in, one shard per feature out, failures isolated per clip."""
from __future__ import annotations

import logging
import os
import re
import traceback
from typing import Any, Callable

import numpy as np

from extract.specs import FeatureOutput
from feature_store import FeatureDir, FeatureReader, FeatureStore
from pipelines.freshness import stat_source
from pipelines.task_types import FACE_QA_KEYS, ClipContext, JobRef, Task, TaskResult

log = logging.getLogger(__name__)


def feature_dir(task: Task, job: JobRef) -> FeatureDir:
    """The job's directory, read-only (created by write_outputs when there is something to write)."""
    return FeatureDir(FeatureStore(task.store_root).root / job.name / job.fingerprint, job.name, job.fingerprint)


def reason(exc: BaseException) -> str:
    return str(exc) or exc.__class__.__name__


def store_reason(exc: Exception) -> str:
    """A store write error in one line (HDF5 wraps ENOSPC in a paragraph of internals, as an
    OSError or, from some calls, a RuntimeError that names the errno only in its text)."""
    errno = getattr(exc, "errno", None)
    if errno:
        return os.strerror(errno)
    found = re.search(r"error message = '([^']+)'", str(exc))
    return found.group(1) if found else reason(exc).splitlines()[0][:200]


def load_crops(task: Task, ids: list[str], crops: dict[str, FeatureOutput], ctx: ClipContext) -> None:
    if task.faces is None:
        return
    with FeatureReader(feature_dir(task, task.faces)) as reader:
        for clip_id in ids:
            if clip_id not in reader:
                ctx.failures[clip_id] = ("no face crops: the faces stage failed for this clip (see faces "
                                         "errors.jsonl; retry with --rerun-failed)")
                continue
            data, times = reader.get(clip_id)
            attrs = reader.attrs(clip_id)
            crops[clip_id] = FeatureOutput(data, times)
            ctx.durations[clip_id] = float(attrs.get("duration", 0.0))
            ctx.face_qa[clip_id] = {k: attrs[k] for k in FACE_QA_KEYS if k in attrs}


def run_isolated(run: Callable[[list[str]], list[FeatureOutput]], ids: list[str],
                 failures: dict[str, str]) -> dict[str, FeatureOutput]:
    """Run all clips at once; if that raises, clip by clip so that one bad clip fails alone."""
    if not ids:
        return {}
    try:
        return dict(zip(ids, run(ids)))
    except Exception:  # noqa: BLE001
        log.debug("batch failed, isolating clips:\n%s", traceback.format_exc())
    outputs = {}
    for clip_id in ids:
        try:
            outputs[clip_id] = run([clip_id])[0]
        except Exception as exc:  # noqa: BLE001
            failures[clip_id] = reason(exc)
    return outputs


def write_outputs(store: FeatureStore, job: JobRef, outputs: dict[str, FeatureOutput], ctx: ClipContext,
                  result: TaskResult, failures: dict[str, str] | None = None) -> None:
    """One shard with the clips that worked; the others (or those the store refuses) as errors.
    A store that cannot be written (read-only, disk full) fails this feature's clips, not the task."""
    failures = {**ctx.failures, **(failures or {})}
    attrs: dict[str, dict[str, Any]] = {}
    for clip_id, out in outputs.items():
        try:
            attrs[clip_id] = {**ctx.source(clip_id), "duration": float(ctx.durations.get(clip_id, 0.0)),
                              "extractor": job.name, "extractor_version": job.spec_json["version"],
                              **ctx.media_attrs.get(clip_id, {}),
                              **(ctx.face_qa.get(clip_id, {}) if job.name != "faces" else {}), **out.qa}
        except OSError as exc:  # the file vanished meanwhile
            failures[clip_id] = reason(exc)
    written: list[str] = []
    try:
        fd = store.feature_dir(job.name, job.fingerprint, spec=job.spec_json)  # created only now
        if attrs:
            written = _write_shard(fd, job, outputs, attrs, failures, result)
    except (OSError, RuntimeError) as exc:  # the shard was discarded whole: nothing half-written is published
        why = f"cannot write to the store: {store_reason(exc)}"
        failures.update(dict.fromkeys(attrs, why))
        written = []
    result.done[job.name] = result.done.get(job.name, 0) + len(written)
    result.stage_media[job.name] = result.stage_media.get(job.name, 0.0) + \
        sum(ctx.durations.get(c, 0.0) for c in written)
    fail_clips(store, job, [c for c in job.clip_ids if c not in written], ctx, result, failures)


def _write_shard(fd: FeatureDir, job: JobRef, outputs: dict[str, FeatureOutput], attrs: dict[str, dict[str, Any]],
                 failures: dict[str, str], result: TaskResult) -> list[str]:
    written = []
    with result.timed(job.name), fd.open_shard() as shard:
        for clip_id, clip_attrs in attrs.items():
            out = outputs[clip_id]
            try:
                shard.add(clip_id, np.asarray(out.data), np.asarray(out.times), attrs=clip_attrs,
                          extras=out.extras)
            except (ValueError, TypeError) as exc:  # e.g. no rows, NaN, wrong shape: this clip only
                failures[clip_id] = reason(exc)
                continue
            written.append(clip_id)
            for key, value in out.qa.items():
                result.qa.setdefault(f"{job.name}.{key}", []).append(float(value))
    return written


def fail_clips(store: FeatureStore, job: JobRef, ids: list[str], ctx: ClipContext, result: TaskResult,
               failures: dict[str, str], default: str = "no output (unknown reason)") -> None:
    """Count `ids` as failed for this job and record each in its errors.jsonl (if the store lets us)."""
    for clip_id in ids:
        why = failures.get(clip_id, default)
        result.failed.setdefault(job.name, []).append((clip_id, why))
        try:
            record_error(store.feature_dir(job.name, job.fingerprint, spec=job.spec_json), clip_id,
                         ctx.paths[clip_id], why)
        except OSError as exc:
            result.unrecorded += 1
            note = f"{job.name}: cannot record failures in errors.jsonl: {store_reason(exc)}"
            if note not in result.store_errors:
                result.store_errors.append(note)


def record_error(fd: FeatureDir, clip_id: str, path: str, why: str) -> None:
    """errors.jsonl line with the file's size/mtime, so the clip is retried once the file changes."""
    info: dict[str, Any] = {"source": path}
    now = stat_source(path)
    if now is not None:
        info.update(size=now[0], mtime=now[1])
    fd.record_error(clip_id, why, **info)
