"""State of one worker process, kept across tasks: built models (one lock each), torch threads and
the allocator's thresholds.

A model is built the first time a task of this process needs it and reused by every later task
(keyed by feature, fingerprint, device and batch size). When a worker runs two tasks at once
(--tasks-per-worker 2, so that one task decodes while the other infers), each model is used by
one task at a time: its lock is held for a whole `run` call.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from collections import Counter
from typing import Any

from extract.catalog import catalog
from extract.specs import BuildOptions
from pipelines.settings import usable_cores

log = logging.getLogger(__name__)

_MODELS: dict[tuple, tuple[Any, threading.Lock]] = {}
_GUARD = threading.Lock()
_LOADS: Counter = Counter()  # feature -> models built in this process
_AUTO_THREADS: int | None = None
_ALLOCATOR_TUNED = False
KEEP_FREED_BYTES = 256 << 20  # glibc mmap and trim thresholds in worker processes
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)


def extractor_for(name: str, fingerprint: str, config: dict, weights_path: str | None, device: str,
                  batch_size: int, weights: dict[str, str] | None = None) -> tuple[Any, threading.Lock]:
    """The extractor for this feature in this process (built on first use) and its lock."""
    key = (name, fingerprint, device, batch_size)
    with _GUARD:  # builds are rare; holding the guard keeps two tasks from building the same model
        entry = _MODELS.get(key)
        if entry is None:
            log.info("pid %d: loading %s@%s on %s", os.getpid(), name, fingerprint, device)
            options = BuildOptions(config, device, batch_size, weights_path, dict(weights or {}))
            extractor = catalog().get(name).build(options)
            entry = _MODELS[key] = (extractor, threading.Lock())
            _LOADS[name] += 1
        return entry


def model_loads() -> dict[str, int]:
    """How many times each feature's model was built in this process (1 each, if all is well)."""
    return dict(_LOADS)


def set_torch_threads(n: int) -> int:
    """Use `n` intra-op threads (0: this worker's share of its host's cores). Before torch is
    imported the variables it reads are set instead, so audio-only workers never import it here."""
    n = n if n > 0 else auto_threads()
    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(n)
    return n


def auto_threads() -> int:
    """Cores of this host divided among the Dask worker processes on it (asked once per process)."""
    global _AUTO_THREADS
    if _AUTO_THREADS is None:
        cores, peers = usable_cores(), 1
        try:
            from distributed import get_client, get_worker

            me = get_worker()
            workers = get_client().scheduler_info(n_workers=-1)["workers"].values()
            peers = max(1, sum(1 for w in workers if w.get("host") == me.ip))
        except (ImportError, ValueError, KeyError, OSError) as exc:  # not in a Dask worker
            log.debug("auto threads: %s", exc)
        _AUTO_THREADS = max(1, cores // peers)
    return _AUTO_THREADS


def keep_freed_memory() -> bool:
    """Let glibc keep freed blocks of up to KEEP_FREED_BYTES for reuse (once per process; glibc only).

    Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's mmap
    threshold at 128 KiB: each batch's activations are then fresh mmaps whose pages fault in again.
    Measured per frame at batch 64, one thread: fer_minixception 5.2 → 1.4 ms, resnet18 27 → 18 ms
    (BENCHMARKS.md, "Extraction throughput"); the cost is RSS staying at a task's peak (+~150 MiB
    for resnet18) instead of shrinking between batches."""
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
    except OSError:
        mallopt = None
    if mallopt is None:  # not glibc (musl, macOS): leave the allocator alone
        return False
    _ALLOCATOR_TUNED = bool(mallopt(_M_MMAP_THRESHOLD, KEEP_FREED_BYTES)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES))
    return _ALLOCATOR_TUNED
