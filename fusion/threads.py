"""How many CPU threads torch uses for a fit (`--threads`; 0 = automatic).

Automatic = half the cores this process may use, fewer if they are already busy (the 1-minute
load average), at least 1 and at most 8. Measured on a 2-core machine shared with other jobs
(BENCHMARKS.md, "threads"): the default head took 24 s with 1 thread and 286 s with 2 while
other processes kept the cores busy (OpenMP threads spin waiting for a core that is taken),
and a fit that started with 2 threads on an idle machine slowed 8x when others started
mid-run. Leaving half the cores free bounds that risk; beyond ~8 threads these small models
stop scaling anyway.
"""
from __future__ import annotations

import logging

import torch

from pipelines.settings import busy_cores, usable_cores  # stdlib only: eri-extract's core count, one rule

log = logging.getLogger(__name__)
MAX_AUTO_THREADS = 8


def auto_threads() -> int:
    cores = usable_cores()
    return max(1, min(MAX_AUTO_THREADS, cores // 2, cores - int(round(busy_cores()))))


def apply_threads(requested: int) -> int:
    """Set torch's intra-op threads (0 = auto_threads()); returns the number in use."""
    n = requested if requested > 0 else auto_threads()
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    log.info("torch threads: %d (%s)", n, "requested" if requested > 0 else "automatic")
    return n
