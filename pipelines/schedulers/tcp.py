"""`tcp`: an existing Dask scheduler at tcp://HOST:PORT (its workers must see the same paths)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from pipelines.schedulers.dask_executor import DaskExecutor, quiet_dask
from pipelines.settings import SchedulerSettings


def planned_workers(settings: SchedulerSettings) -> int | None:
    return None  # the cluster's, not ours


@contextmanager
def open_executor(settings: SchedulerSettings, worker_env: dict[str, str]) -> Iterator[DaskExecutor]:
    from distributed import Client

    quiet_dask(settings.verbose)
    try:
        client = Client(settings.address, timeout="20s")
    except OSError as exc:
        raise ConnectionError(f"cannot reach the Dask scheduler at {settings.address}: {exc}") from None
    with client:
        workers = len(client.scheduler_info(n_workers=-1).get("workers", {})) or None
        yield DaskExecutor(client, "tcp", workers)
