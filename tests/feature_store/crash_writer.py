"""Writer process for the crash test: resumes from completed(), writes the remaining clips in small
shards and prints `committed <id>` for each clip right after its shard was published.

Usage: python crash_writer.py STORE N_CLIPS CLIPS_PER_SHARD
"""
from __future__ import annotations

import sys

import numpy as np

from feature_store import FeatureStore

SPEC = {"name": "crashy", "dim": 48, "dtype": "float32"}
FP = "c0ffee000001"


def clip_data(i: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(i)
    t = 8 + i % 5
    return rng.standard_normal((t, SPEC["dim"])).astype(np.float32), np.arange(t) * 0.2


def main() -> None:
    store, n_clips, per_shard = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    fd = FeatureStore(store).feature_dir("crashy", FP, spec=SPEC)
    done = fd.completed()
    todo = [i for i in range(n_clips) if f"clip/{i:04d}" not in done]
    print("ready", flush=True)
    for start in range(0, len(todo), per_shard):
        batch = todo[start:start + per_shard]
        with fd.open_shard() as shard:
            for i in batch:
                data, times = clip_data(i)
                shard.add(f"clip/{i:04d}", data, times, attrs={"duration": float(times[-1])})
        sys.stdout.write("".join(f"committed clip/{i:04d}\n" for i in batch))
        sys.stdout.flush()
    print("finished", flush=True)


if __name__ == "__main__":
    main()
