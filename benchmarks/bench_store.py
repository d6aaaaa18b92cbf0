"""Feature-store read speed: FeatureReader.load_all vs a raw h5py loop over the same shards, and
FeatureDir.completed() over ~1000 clips in ~60 shards, also for a store written before the
canonical clip-id rule (groups named `[clip00001]`, mapped to canonical ids by the index).

    .venv/bin/python benchmarks/bench_store.py [--clips 2000 --T 32 --dim 1024 --per-shard 100 --dir DIR]
                                               [--token-clips 1000]

Token sets: --token-clips clips of (32, 49, 256) (the dual-branch model's ResNet18 maps) stored as
float32 and as float16: disk per clip, write time, and load_all time (float16 widened to float32,
and kept as float16).

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


def fill_tokens(store: FeatureStore, dtype: str, n: int, per_shard: int = 100) -> None:
    spec = {"dim": 256, "item_shape": [49, 256], "dtype": dtype}
    fd = store.feature_dir(f"maps_{dtype}", fingerprint_of({"bench": "maps", "dtype": dtype}), spec=spec)
    block = np.random.default_rng(0).standard_normal((32, 49, 256)).astype(np.float32)
    for start in range(0, n, per_shard):
        with fd.open_shard() as shard:
            for i in range(start, min(n, start + per_shard)):
                shard.add(f"clip{i:05d}", block + (i % 7), np.arange(32) * 0.4)


def bench_tokens(store: FeatureStore, n: int, repeat: int) -> None:
    rows = {}
    for dtype in ("float32", "float16"):
        start = time.perf_counter()
        fill_tokens(store, dtype, n)
        written = time.perf_counter() - start
        fd = store.resolve(f"maps_{dtype}")

        def load(as_dtype=None, _name=f"maps_{dtype}"):
            with store.reader(_name) as reader:
                return reader.load_all(dtype=as_dtype)

        load()  # warm the page cache
        t_32, arrays = best_of(repeat, load)
        t_16, _ = best_of(repeat, lambda: load("float16"))
        assert len(arrays) == n and arrays[0].shape == (32, 49, 256) and arrays[0].dtype == np.float32
        rows[dtype] = (fd.size_bytes() / n, written, t_32, t_16)
        del arrays
    print(f"token sets: {n} clips of (32, 49, 256)")
    print("| storage | disk per clip | write | load_all → float32 | load_all → float16 |")
    for dtype, (per_clip, written, t_32, t_16) in rows.items():
        print(f"| {dtype} | {per_clip / 2**20:.2f} MiB | {written:.1f} s | {t_32:.2f} s | {t_16:.2f} s |")
    print(f"float16 / float32: disk {rows['float16'][0] / rows['float32'][0]:.2f}, "
          f"load_all → float32 {rows['float16'][2] / rows['float32'][2]:.2f}")


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
    ap.add_argument("--token-clips", type=int, default=1000, help="clips of (32, 49, 256) token sets (0: skip)")
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
        if args.token_clips:
            bench_tokens(store, args.token_clips, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
