"""The Executor over a distributed.Client, shared by the local, tcp and slurm kinds."""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)


def quiet_dask(verbose: bool, level: int = logging.ERROR) -> None:
    """Dask logs every connection and shutdown step at INFO; keep that for --verbose."""
    for name in ("distributed", "dask_jobqueue", "tornado"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else level)


class DaskExecutor:
    def __init__(self, client, name: str, workers: int | None = None, note: str = "") -> None:
        self.client = client
        self.name = name
        self.workers = workers
        self.note = note  # one line for the user once the executor is up ("" = nothing to say)

    def submit(self, fn: Callable[..., Any], *args: Any, retries: int = 0):
        return self.client.submit(fn, *args, pure=False, retries=retries)

    def as_completed(self, futures: Iterable):
        from distributed import as_completed

        return as_completed(list(futures))

    def cancel(self, futures: Iterable) -> None:
        self.client.cancel(list(futures), force=True)

    def lost_worker(self, exc: BaseException) -> bool:
        from distributed import KilledWorker

        return isinstance(exc, KilledWorker)

    def release(self, future) -> None:
        future.release()

    @property
    def dashboard_link(self) -> str:
        return self.client.dashboard_link
