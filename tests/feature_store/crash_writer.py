"""Writer process for the crash test: resumes from completed(), writes the remaining clips in small
shards and prints `committed <id>` for each clip right after its shard was published.

Usage: python crash_writer.py STORE N_CLIPS CLIPS_PER_SHARD [vectors|tokens]
(vectors: (T, 48) float32 rows; tokens: (T, 49, 16) token sets stored as float16)
"""
from __future__ import annotations

import sys

import numpy as np

from feature_store import FeatureStore

SPECS = {"vectors": {"name": "crashy", "dim": 48, "dtype": "float32"},
         "tokens": {"name": "crashy", "dim": 16, "item_shape": [49, 16], "dtype": "float16"}}
FP = "c0ffee000001"


def clip_data(i: int, kind: str = "vectors") -> tuple[np.ndarray, np.ndarray]:
    """What clip i holds, as the store returns it (float16 storage read back as float32)."""
    rng = np.random.default_rng(i)
    t = 8 + i % 5
    spec = SPECS[kind]
    row = tuple(spec.get("item_shape") or (spec["dim"],))
    data = rng.standard_normal((t, *row)).astype(spec["dtype"]).astype(np.float32)
    return data, np.arange(t) * 0.2


def main() -> None:
    store, n_clips, per_shard = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    kind = sys.argv[4] if len(sys.argv) > 4 else "vectors"
    fd = FeatureStore(store).feature_dir("crashy", FP, spec=SPECS[kind])
    done = fd.completed()
    todo = [i for i in range(n_clips) if f"clip/{i:04d}" not in done]
    print("ready", flush=True)
    for start in range(0, len(todo), per_shard):
        batch = todo[start:start + per_shard]
        with fd.open_shard() as shard:
            for i in batch:
                data, times = clip_data(i, kind)
                shard.add(f"clip/{i:04d}", data, times, attrs={"duration": float(times[-1])})
        sys.stdout.write("".join(f"committed clip/{i:04d}\n" for i in batch))
        sys.stdout.flush()
    print("finished", flush=True)


if __name__ == "__main__":
    main()
