"""What a user asked `eri-extract` for: the work (ExtractSettings) and where it runs (SchedulerSettings)."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class SamplingChoice:
    """Exactly one of fps / frames / every (mirrors extract.media.Sampling)."""

    fps: float | None = 5.0
    frames: int | None = None
    every: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ExtractSettings:
    modality: Literal["video", "audio", "all"]
    features: tuple[str, ...]
    sampling: SamplingChoice = SamplingChoice()
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # feature -> config overrides
    weights: dict[str, str] = field(default_factory=dict)  # weights entry -> explicit path
    batch_size: int = 32
    device: str = "cpu"
    missing_audio: Literal["error", "zeros"] = "error"
    rerun_failed: bool = False
    clips_per_task: int = 8
    torch_threads: int = 1  # per worker process; 0 = decided on the worker (cores on its host / its workers)
    prefetch: bool = True   # decode the next clip in a thread while faces are detected in this one
    audio_stream: int = 0   # which audio stream of each file the audio features read (0 = the first)
    id_from: Literal["name", "relpath"] = "name"  # clip ids of a folder scan: file stem or relative path


def busy_cores() -> float:
    """How many cores other work keeps busy now (the 1-minute load average; 0 where unknown)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def usable_cores() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class SchedulerSettings:
    """`kind`: sync | local | tcp (address = tcp://HOST:PORT) | slurm (slurm = dask-jobqueue options)."""

    kind: Literal["sync", "local", "tcp", "slurm"] = "local"
    address: str | None = None
    workers: int = 1               # local: worker processes
    tasks_per_worker: int = 1      # tasks in flight per worker process (Dask threads per worker)
    dashboard: bool = False
    slurm: dict[str, Any] = field(default_factory=dict)
    verbose: bool = False


def split_cores(kind: str, workers: int, threads: int, cores: int, busy: float = 0.0) -> tuple[int, int]:
    """(worker processes, torch threads per worker) so that workers × threads = cores unless told otherwise.

    sync runs one process with every core; local defaults to one single-threaded worker per core
    (process parallelism scales best for decode + face detection + small CNNs, see BENCHMARKS.md);
    for tcp/slurm the workers are not ours: threads 0 lets each worker take its share of its host.
    Automatic threads also leave out the cores other processes keep busy (`busy`, e.g. the load
    average): OpenMP threads that wait for a taken core spin, and fer_minixception with 2 threads on
    a 2-core machine where another job ran was 17× slower than with 1 (BENCHMARKS.md)."""
    free = max(1, cores - int(round(busy)))
    if kind == "sync":
        return 1, threads if threads > 0 else free
    if kind == "local":
        if workers <= 0:
            workers = max(1, cores // threads) if threads > 0 else cores
        return workers, threads if threads > 0 else max(1, min(cores, free) // workers)
    return workers, max(0, threads)
