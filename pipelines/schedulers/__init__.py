"""Where tasks run: one module per scheduler kind, each opening an Executor as a context manager.

Kinds: `sync` (in this process, one task at a time: for debugging), `local` (a Dask LocalCluster on
127.0.0.1), `tcp` (an existing Dask scheduler, `tcp://HOST:PORT`), `slurm` (Dask workers started as
SLURM jobs through dask-jobqueue). Callers never switch on the kind: they parse the user's words
with `scheduler_kind`, then `with open_executor(settings, worker_env) as executor:` submit work and
read results through the Executor interface (pipelines.schedulers.executor).
"""
from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import Iterator, Mapping

from pipelines.schedulers.executor import Executor
from pipelines.settings import SchedulerSettings

__all__ = ["Executor", "KINDS", "build_settings", "open_executor", "planned_workers", "scheduler_kind"]

KINDS = {"sync": "pipelines.schedulers.sync", "local": "pipelines.schedulers.local",
         "tcp": "pipelines.schedulers.tcp", "slurm": "pipelines.schedulers.slurm"}
SCHEDULER_HELP = ("local (LocalCluster on 127.0.0.1) | sync (in-process, for debugging) | "
                  "tcp://HOST:PORT (an existing Dask cluster)")


def scheduler_kind(scheduler: str, cluster: str | None = None) -> tuple[str, str | None]:
    """(kind, address) from `--scheduler` and `--cluster`; ValueError naming the bad value."""
    if cluster not in (None, "slurm"):
        raise ValueError(f"--cluster {cluster!r}: only slurm is supported")
    if cluster == "slurm":
        return "slurm", None
    if scheduler in ("local", "sync"):
        return scheduler, None
    if scheduler.startswith("tcp://"):
        return "tcp", scheduler
    raise ValueError(f"--scheduler {scheduler!r}: use local, sync or tcp://HOST:PORT")


def build_settings(scheduler: str, cluster: str | None, workers: int, threads: int, tasks_per_worker: int = 1,
                   dashboard: bool = False, slurm: dict | None = None, verbose: bool = False
                   ) -> tuple[SchedulerSettings, int]:
    """(SchedulerSettings, torch threads per worker) from the user's scheduler options, as every
    command that runs work on a scheduler takes them (eri-extract, eri-fit --search)."""
    from pipelines.settings import busy_cores, split_cores, usable_cores

    kind, address = scheduler_kind(scheduler, cluster)
    slurm = dict(slurm or {})
    if kind == "slurm" and threads <= 0:
        from pipelines.schedulers.slurm import threads_per_worker
        threads = threads_per_worker(slurm)
    workers, threads = split_cores(kind, workers, threads, usable_cores(), busy_cores())
    return SchedulerSettings(kind, address, workers, max(1, tasks_per_worker), dashboard, slurm, verbose), threads


def planned_workers(settings: SchedulerSettings) -> int | None:
    """Worker processes the run will have, when that is known before it starts (for estimates)."""
    return importlib.import_module(KINDS[settings.kind]).planned_workers(settings)


@contextmanager
def open_executor(settings: SchedulerSettings, worker_env: Mapping[str, str] | None = None) -> Iterator[Executor]:
    """An Executor for `settings.kind`; `worker_env` is set in worker processes we start (threads)."""
    module = importlib.import_module(KINDS[settings.kind])
    with module.open_executor(settings, dict(worker_env or {})) as executor:
        yield executor
