"""Feature-store read speed: FeatureReader.load_all vs a raw h5py loop over the same shards, and
FeatureDir.completed() over ~1000 clips in ~60 shards, also for a store written before the
canonical clip-id rule (groups named `[clip00001]`, mapped to canonical ids by the index).

    .venv/bin/python benchmarks/bench_store.py [--clips 2000 --T 32 --dim 1024 --per-shard 100 --dir DIR]

Both readers run on a warm page cache (one untimed pass first); the best of --repeat runs is shown.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from feature_store import FeatureStore, fingerprint_of
from feature_store import feature_dir as feature_dir_module
from feature_store.names import decode_id, encode_id


def best_of(repeat: int, fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def fill(store: FeatureStore, feature: str, n: int, t: int, dim: int, per_shard: int) -> None:
    fd = store.feature_dir(feature, fingerprint_of({"bench": feature, "dim": dim}), spec={"dim": dim})
    rng = np.random.default_rng(0)
    block = rng.standard_normal((t, dim)).astype(np.float32)
    for start in range(0, n, per_shard):
        with fd.open_shard() as shard:
            for i in range(start, min(n, start + per_shard)):
                shard.add(f"clip{i:05d}", block + i, np.arange(t) * 0.2)


def bracket_groups(shard: Path) -> None:
    """Rename each group X to [X], as the CSV import stored Hume ids before the canonical rule."""
    with h5py.File(shard, "r+") as f:
        for key in list(f["clips"]):
            f["clips"].move(key, encode_id(f"[{decode_id(key)}]"))


def raw_h5py(shards: list[Path]) -> list[np.ndarray]:
    out = []
    for path in shards:
        with h5py.File(path, "r") as f:
            clips = f["clips"]
            for key in clips:
                out.append(clips[key]["data"][()])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--per-shard", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="where to build the store (default: a temp dir)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_store_", dir=args.dir))
    try:
        store = FeatureStore(root)
        start = time.perf_counter()
        fill(store, "big", args.clips, args.T, args.dim, args.per_shard)
        mib = args.clips * args.T * args.dim * 4 / 2**20
        print(f"write: {args.clips} clips x ({args.T}, {args.dim}) float32 = {mib:.0f} MiB "
              f"in {time.perf_counter() - start:.2f} s")
        shards = store.resolve("big").shards()

        def ours() -> list[np.ndarray]:
            with store.reader("big") as reader:
                return reader.load_all()

        raw_h5py(shards), ours()  # warm the page cache
        t_raw, raw = best_of(args.repeat, lambda: raw_h5py(shards))
        t_ours, mine = best_of(args.repeat, ours)
        assert len(raw) == len(mine) == args.clips and all(np.array_equal(a, b) for a, b in zip(raw, mine))
        print(f"raw h5py loop : {t_raw:.3f} s ({mib / t_raw:,.0f} MiB/s)")
        print(f"reader.load_all (incl. opening the reader): {t_ours:.3f} s ({mib / t_ours:,.0f} MiB/s)")
        print(f"ratio load_all / raw = {t_ours / t_raw:.2f}")

        fill(store, "small", 1000, 8, 16, 17)  # 1000 clips in 59 shards
        fd = store.resolve("small")

        def cold_completed() -> set[str]:
            feature_dir_module._IDS_CACHE.clear()
            return fd.completed()

        t_cold, ids = best_of(5, cold_completed)
        t_warm, _ = best_of(5, fd.completed)
        print(f"completed(): {len(ids)} clips in {len(fd.shards())} shards: {t_cold * 1000:.1f} ms "
              f"(fresh process), {t_warm * 1000:.2f} ms (shard index cached)")

        fill(store, "legacy", 1000, 8, 16, 17)
        legacy = store.resolve("legacy")
        for shard in legacy.shards():
            bracket_groups(shard)

        def cold_legacy() -> set[str]:
            feature_dir_module._IDS_CACHE.clear()
            return legacy.completed()

        t_cold, ids = best_of(5, cold_completed)  # again, next to the legacy figure
        t_legacy, legacy_ids = best_of(5, cold_legacy)
        t_legacy_warm, _ = best_of(5, legacy.completed)
        assert legacy_ids == ids
        print(f"completed() on a pre-rule store ([id] groups): {t_legacy * 1000:.1f} ms fresh "
              f"(ratio to canonical {t_legacy / t_cold:.2f}), {t_legacy_warm * 1000:.2f} ms cached")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
