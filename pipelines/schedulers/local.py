"""`local`: a Dask LocalCluster of worker processes on 127.0.0.1 (nothing listens beyond loopback)."""
from __future__ import annotations

import logging
import signal
from contextlib import contextmanager
from typing import Iterator

from pipelines.schedulers.dask_executor import DaskExecutor, quiet_dask
from pipelines.settings import SchedulerSettings

log = logging.getLogger(__name__)


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


def planned_workers(settings: SchedulerSettings) -> int | None:
    return settings.workers


@contextmanager
def open_executor(settings: SchedulerSettings, worker_env: dict[str, str]) -> Iterator[DaskExecutor]:
    from distributed import Client, LocalCluster

    quiet_dask(settings.verbose)
    dashboard = "127.0.0.1:8787" if settings.dashboard else "127.0.0.1:0"
    with _workers_ignore_sigint():
        cluster = LocalCluster(
            n_workers=settings.workers, threads_per_worker=settings.tasks_per_worker, processes=True,
            host="127.0.0.1", dashboard_address=dashboard, scheduler_kwargs={"dashboard": settings.dashboard},
            silence_logs=logging.INFO if settings.verbose else logging.ERROR, env=worker_env)
    try:
        with Client(cluster) as client:
            if settings.dashboard:
                log.warning("Dask dashboard: %s", client.dashboard_link)
            yield DaskExecutor(client, "local", settings.workers)
    finally:
        try:
            cluster.close(timeout=10)
        except BaseException as exc:  # noqa: BLE001 — shutting down after Ctrl-C: never spew
            log.debug("closing the cluster: %r", exc)
