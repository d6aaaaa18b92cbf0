"""Run extraction tasks on an Executor (pipelines.schedulers): any kind, one loop.

Results come back as small TaskResult summaries; arrays never pass through the client (each task
writes its own shards) and each future is released as soon as its result is read. A worker that
dies mid-task is replaced (nanny) and the task runs again elsewhere (the scheduler's
allowed-failures); if one batch keeps killing workers it is split into one task per clip so that
only the clip that crashes is given up. Ctrl-C cancels what is queued and closes the cluster:
shards already written stay valid and a rerun continues from them.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

from pipelines.interrupts import raise_if_interrupted
from pipelines.schedulers import Executor
from pipelines.stages import Task, TaskResult, run_task

log = logging.getLogger(__name__)

OnResult = Callable[[Task, TaskResult], None]
OnFailure = Callable[[Task, str, bool], None]  # (task, reason, the clip itself is to blame)
TASK_RETRIES = 1  # for exceptions a task raises (a worker dying is retried by the scheduler anyway)


def split_task(task: Task) -> list[Task]:
    """One task per clip, each job restricted to that clip."""
    out = []
    for clip in task.clips:
        jobs = tuple(replace(j, clip_ids=(clip[0],)) for j in task.jobs if clip[0] in j.clip_ids)
        if jobs:
            out.append(replace(task, clips=(clip,), jobs=jobs))
    return out


def run_tasks(tasks: list[Task], on_result: OnResult, on_failure: OnFailure, executor: Executor) -> None:
    futures: dict[object, Task] = {}

    def submit(task: Task):
        future = executor.submit(run_task, task, retries=TASK_RETRIES)
        futures[future] = task
        return future

    queue = executor.as_completed([submit(t) for t in tasks])
    try:
        for future in queue:
            task = futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 — one broken batch must not stop the run
                if executor.lost_worker(exc) and len(task.clips) > 1:
                    log.warning("a batch of %d clips killed its workers repeatedly; retrying clip by clip",
                                len(task.clips))
                    for sub in split_task(task):
                        queue.add(submit(sub))
                elif executor.lost_worker(exc):
                    on_failure(task, f"the worker process died each time it processed this clip "
                                     f"(crash in native code or out of memory?): {exc}", True)
                else:
                    log.debug("task failed", exc_info=True)
                    on_failure(task, f"{type(exc).__name__}: {exc}", False)
                continue
            finally:
                executor.release(future)
            on_result(task, result)
            raise_if_interrupted()
    except BaseException:
        executor.cancel(list(futures))
        raise
