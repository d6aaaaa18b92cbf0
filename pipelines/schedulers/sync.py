"""`sync`: every task runs in this process, in submission order, when its result is read.

No Dask is imported: for debugging (breakpoints, tracebacks) and for the cheapest start-up.
"""
from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from pipelines.settings import SchedulerSettings

_UNSET = object()


class SyncFuture:
    """Runs its function the first time its result is asked for; remembers result or exception."""

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self._fn, self._args = fn, args
        self._value: Any = _UNSET
        self._error: BaseException | None = None

    def result(self) -> Any:
        if self._value is _UNSET and self._error is None:
            try:
                self._value = self._fn(*self._args)
            except Exception as exc:  # noqa: BLE001 — handed to the caller, as a Dask future would
                self._error = exc
            self._fn = self._args = None  # type: ignore[assignment]
        if self._error is not None:
            raise self._error
        return self._value


class SyncCompleted:
    def __init__(self, futures: Iterable[SyncFuture]) -> None:
        self._queue = deque(futures)

    def add(self, future: SyncFuture) -> None:
        self._queue.append(future)

    def __iter__(self) -> Iterator[SyncFuture]:
        while self._queue:
            yield self._queue.popleft()


class SyncExecutor:
    name = "sync"
    workers = 1
    note = ""

    def submit(self, fn: Callable[..., Any], *args: Any, retries: int = 0) -> SyncFuture:
        return SyncFuture(fn, args)

    def as_completed(self, futures: Iterable[SyncFuture]) -> SyncCompleted:
        return SyncCompleted(futures)

    def cancel(self, futures: Iterable[SyncFuture]) -> None:
        pass  # nothing runs behind the caller's back

    def lost_worker(self, exc: BaseException) -> bool:
        return False  # the worker is this process

    def release(self, future: SyncFuture) -> None:
        pass


def planned_workers(settings: SchedulerSettings) -> int | None:
    return 1


@contextmanager
def open_executor(settings: SchedulerSettings, worker_env: dict[str, str]) -> Iterator[SyncExecutor]:
    yield SyncExecutor()
