"""The interface every scheduler kind offers: submit a function, read results as they complete.

`submit(fn, *args, retries=n)` returns a future (`.result()` raises what fn raised); `as_completed`
yields futures as they finish and accepts more with `.add(future)` while iterating; `cancel` drops
queued work; `lost_worker(exc)` tells whether an exception means a worker process died (the task
may be retried elsewhere or split) rather than the task raising; `release(future)` frees its result.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Protocol


class Future(Protocol):
    def result(self) -> Any: ...


class Completed(Protocol):
    def __iter__(self) -> Iterator[Future]: ...
    def add(self, future: Future) -> None: ...


class Executor(Protocol):
    name: str
    workers: int | None  # worker processes when known up front (for time estimates), else None
    note: str  # a line for the user once it is up, e.g. that SLURM jobs were submitted ("" = none)

    def submit(self, fn: Callable[..., Any], *args: Any, retries: int = 0) -> Future: ...
    def as_completed(self, futures: Iterable[Future]) -> Completed: ...
    def cancel(self, futures: Iterable[Future]) -> None: ...
    def lost_worker(self, exc: BaseException) -> bool: ...
    def release(self, future: Future) -> None: ...
