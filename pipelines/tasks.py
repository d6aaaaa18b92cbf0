"""Turn a plan into tasks: batches of clips of one modality with the jobs each batch needs."""
from __future__ import annotations

from pipelines.plan import Plan
from pipelines.settings import ExtractSettings
from pipelines.stages import JobRef, Task


def _ref(job, clip_ids: tuple[str, ...]) -> JobRef:
    return JobRef(job.name, job.fingerprint, job.config, job.spec_json, job.weights_path, clip_ids, job.weights)


def make_tasks(plan: Plan, settings: ExtractSettings, store_root: str) -> list[Task]:
    tasks = []
    for modality in ("video", "audio"):
        jobs = [j for j in plan.jobs if j.modality == modality and j.todo]
        if not jobs:
            continue
        # Every clip is either cached, failed or to do for `faces`, so a backbone's clip
        # whose crops are missing is in faces.todo and gets them detected in the same task.
        faces = plan.job("faces")
        todo = {j.name: set(j.todo) for j in jobs}
        ordered = [c for c in plan.clips if any(c in ids for ids in todo.values())]
        for start in range(0, len(ordered), settings.clips_per_task):
            batch = ordered[start:start + settings.clips_per_task]
            refs = tuple(_ref(j, tuple(c for c in batch if c in todo[j.name])) for j in jobs)
            tasks.append(Task(
                store_root=store_root, modality=modality,
                clips=tuple((c, str(plan.clips[c].path)) for c in batch),
                jobs=tuple(r for r in refs if r.clip_ids),
                faces=_ref(faces, ()) if (modality == "video" and faces) else None,
                sampling=settings.sampling.as_dict(), device=settings.device,
                batch_size=settings.batch_size, missing_audio=settings.missing_audio,
                torch_threads=settings.torch_threads, prefetch=settings.prefetch,
                audio_stream=settings.audio_stream))
    return tasks

