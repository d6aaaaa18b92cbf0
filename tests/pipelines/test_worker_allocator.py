"""Worker processes keep freed blocks for reuse instead of handing every batch's memory back to the
OS (pipelines.worker.keep_freed_memory): checked by what a 64 MiB free does to the process's RSS,
started the way Dask's nanny starts workers (MALLOC_TRIM_THRESHOLD_=65536)."""
from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = """
import json, sys
import numpy as np
from pipelines.worker import keep_freed_memory

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

tuned = keep_freed_memory() if sys.argv[1] == "tuned" else False
before = rss_mib()
block = np.ones(64 << 20, np.uint8)  # touched: 64 MiB resident
del block
print(json.dumps({"tuned": tuned, "kept_mib": rss_mib() - before}))
"""


def _probe(mode: str) -> dict:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") != "libc.so.6",
                    reason="glibc's mallopt is what is tuned")
def test_a_worker_keeps_a_freed_batch_for_the_next_one():
    plain, tuned = _probe("plain"), _probe("tuned")
    assert plain["kept_mib"] < 8, plain    # Dask's setting: the block was an mmap, unmapped on free
    assert tuned["tuned"] and tuned["kept_mib"] > 56, tuned  # ours: heap memory kept for reuse


def test_every_task_tunes_its_worker_process(monkeypatch, tmp_path):
    from pipelines import stages
    from pipelines.task_types import Task

    calls = []
    monkeypatch.setattr(stages, "keep_freed_memory", lambda: calls.append(os.getpid()) or True)
    task = Task(store_root=str(tmp_path), modality="audio", clips=(), jobs=(), faces=None, sampling={},
                device="cpu", batch_size=8, missing_audio="fail", torch_threads=1)
    stages.run_task(task)
    assert calls == [os.getpid()]
