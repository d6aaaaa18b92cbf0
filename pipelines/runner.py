"""Run tasks on a scheduler: in-process (`sync`), a local Dask cluster, an existing one, or SLURM.

Results come back as small TaskResult summaries; arrays never pass through the client (each task
writes its own shards) and each future is released as soon as its result is read. A worker that
dies mid-task is replaced (nanny) and the task runs again elsewhere (the scheduler's
allowed-failures); if one batch keeps killing workers it is split into one task per clip so that
only the clip that crashes is given up. Ctrl-C cancels what is queued and closes the cluster:
shards already written stay valid and a rerun continues from them.
"""
from __future__ import annotations

import logging
import signal
from contextlib import contextmanager
from dataclasses import replace
from typing import Callable, Iterator

from pipelines.settings import SchedulerSettings
from pipelines.stages import Task, TaskResult, run_task

log = logging.getLogger(__name__)

OnResult = Callable[[Task, TaskResult], None]
OnFailure = Callable[[Task, str, bool], None]  # (task, reason, the clip itself is to blame)
TASK_RETRIES = 1  # for exceptions a task raises (a worker dying is retried by the scheduler anyway)


def run_sync(tasks: list[Task], on_result: OnResult, on_failure: OnFailure) -> None:
    for task in tasks:
        try:
            result = run_task(task)
        except Exception as exc:  # noqa: BLE001 — one broken batch must not stop the run
            log.debug("task failed", exc_info=True)
            on_failure(task, f"{type(exc).__name__}: {exc}", False)
            continue
        on_result(task, result)


def split_task(task: Task) -> list[Task]:
    """One task per clip, each job restricted to that clip."""
    out = []
    for clip in task.clips:
        jobs = tuple(replace(j, clip_ids=(clip[0],)) for j in task.jobs if clip[0] in j.clip_ids)
        if jobs:
            out.append(replace(task, clips=(clip,), jobs=jobs))
    return out


def run_dask(tasks: list[Task], on_result: OnResult, on_failure: OnFailure, client) -> None:
    from distributed import KilledWorker, as_completed

    futures: dict[object, Task] = {}

    def submit(task: Task):
        future = client.submit(run_task, task, pure=False, retries=TASK_RETRIES)
        futures[future] = task
        return future

    queue = as_completed([submit(t) for t in tasks])
    try:
        for future in queue:
            task = futures.pop(future)
            try:
                result = future.result()
            except KilledWorker as exc:
                if len(task.clips) > 1:
                    log.warning("a batch of %d clips killed its workers repeatedly; retrying clip by clip",
                                len(task.clips))
                    for sub in split_task(task):
                        queue.add(submit(sub))
                else:
                    on_failure(task, f"the worker process died each time it processed this clip "
                                     f"(crash in native code or out of memory?): {exc}", True)
                continue
            except Exception as exc:  # noqa: BLE001
                on_failure(task, f"{type(exc).__name__}: {exc}", False)
                continue
            finally:
                future.release()
            on_result(task, result)
    except BaseException:
        client.cancel(list(futures), force=True)
        raise


def quiet_dask(verbose: bool, level: int = logging.ERROR) -> None:
    """Dask logs every connection and shutdown step at INFO; keep that for --verbose."""
    for name in ("distributed", "dask_jobqueue", "tornado"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else level)


@contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Processes started in here inherit SIGINT ignored, so a Ctrl-C in the terminal (sent to the
    whole process group) reaches only this client, which then shuts the workers down itself."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to protect
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def dask_client(sched: SchedulerSettings, torch_threads: int) -> Iterator[object]:
    """A Client for `local` (LocalCluster on 127.0.0.1), `tcp` (an existing scheduler) or `slurm`."""
    from distributed import Client, LocalCluster

    quiet_dask(sched.verbose)
    if sched.kind == "local":
        threads = str(max(1, torch_threads))
        with _workers_ignore_sigint():
            cluster = LocalCluster(
                n_workers=sched.workers, threads_per_worker=sched.tasks_per_worker, processes=True,
                host="127.0.0.1", dashboard_address="127.0.0.1:8787" if sched.dashboard else "127.0.0.1:0",
                scheduler_kwargs={"dashboard": sched.dashboard},
                silence_logs=logging.INFO if sched.verbose else logging.ERROR,
                env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads})
        try:
            with Client(cluster) as client:
                if sched.dashboard:
                    log.warning("Dask dashboard: %s", client.dashboard_link)
                yield client
        finally:
            _close(cluster)
    elif sched.kind == "slurm":
        from pipelines.cluster import slurm_cluster

        with slurm_cluster(sched.slurm, sched.tasks_per_worker) as cluster, Client(cluster) as client:
            yield client
    else:
        try:
            client = Client(sched.address, timeout="20s")
        except OSError as exc:
            raise ConnectionError(f"cannot reach the Dask scheduler at {sched.address}: {exc}") from None
        with client:
            yield client


def _close(cluster) -> None:
    try:
        cluster.close(timeout=10)
    except BaseException as exc:  # noqa: BLE001 — shutting down after Ctrl-C: never spew
        log.debug("closing the cluster: %r", exc)
