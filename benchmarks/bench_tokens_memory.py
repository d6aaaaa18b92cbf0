"""Peak memory of training on token-set features: (32, 49, 256) per clip (the dual-branch model's
ResNet18 maps), stored as float16, loaded by fusion.data and kept float16 in memory (widened per
batch), against the same code keeping float32.

    .venv/bin/python benchmarks/bench_tokens_memory.py [--clips 2000 --dir DIR --train-steps 5 --paper-steps 2]

Writes a store of --clips clips (float16, 100 per shard) itself, then, each in a fresh process:
load_fusion_data -> Normalizer.fit on 80 % of the clips -> --train-steps Adam steps of tcn_transformer
(default spatial encoder) on batches of 64 -> peak RSS (ru_maxrss) after each stage. Runs at half and
at all the clips give the RSS per clip (from the peak after loading: the training steps add a
constant, the activations of one batch), from which 16,000 clips are extrapolated: peak at --clips +
per-clip x (16,000 - --clips). --paper-steps: the same at --clips with the `dual_branch_2023` recipe's
encoder sizes (spatial d 256, 4 blocks): its batch of 64 clips x 32 frames x 49 tokens is what the
activations cost. Results: benchmarks/results/tokens_memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

T, N, D = 32, 49, 256
TARGET = 16_000
GIB = 1024 ** 3
RESULTS = Path(__file__).resolve().parent / "results" / "tokens_memory.json"


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def write_store(root: Path, clips: int, per_shard: int = 100) -> None:
    from feature_store import FeatureStore, fingerprint_of

    spec = {"name": "maps", "modality": "video", "dim": D, "item_shape": [N, D], "dtype": "float16"}
    fd = FeatureStore(root).feature_dir("maps", fingerprint_of(spec), spec=spec)
    rng = np.random.default_rng(0)
    pool = [rng.standard_normal((T, N, D), dtype=np.float32) for _ in range(8)]
    times = np.arange(T) * 0.4
    for start in range(0, clips, per_shard):
        with fd.open_shard() as shard:
            for i in range(start, min(clips, start + per_shard)):
                shard.add(f"{i:05d}", (pool[i % 8] * (1 + i / clips)).astype(np.float16), times)


def child(store: str, clips: int, keep: str, train_steps: int, paper: str = "") -> dict:
    """One measurement in this (fresh) process."""
    import torch

    import fusion.data as fdata
    from feature_store import FeatureStore
    from fusion.heads import build_head, get_recipe

    torch.set_num_threads(1)
    if keep == "float32":  # the same loader, told to widen on load
        layout = fdata._item_layout
        fdata._item_layout = lambda *a: (*layout(*a)[:2], np.dtype(np.float32))
    out = {"keep": keep, "clips": clips, "rss_start": peak_rss()}
    ids = [f"{i:05d}" for i in range(clips)]
    t0 = time.perf_counter()
    data = fdata.load_fusion_data(FeatureStore(store), ["maps"], ids, fdata.DataPolicy(steps=T))
    out["load_s"], out["rss_load"] = time.perf_counter() - t0, peak_rss()
    out["array_bytes"] = data.blocks["maps"].data.nbytes
    rows = torch.arange(int(0.8 * clips))
    t0 = time.perf_counter()
    norm = fdata.Normalizer.fit(data, rows)
    out["norm_s"], out["rss_norm"] = time.perf_counter() - t0, peak_rss()
    torch.manual_seed(0)
    options = {**get_recipe("dual_branch_2023").head_options, "spatial_checkpoint": paper == "recompute"} if paper else None
    model = build_head("tcn_transformer", data.streams(), options)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    t0 = time.perf_counter()
    for step in range(train_steps):
        x, m = fdata.make_batch(data, norm, rows[torch.randperm(len(rows))[:64]])
        loss = model(x, m).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    out["step_s"] = (time.perf_counter() - t0) / max(train_steps, 1)
    out["rss_train"] = peak_rss()
    return out


def measure(store: Path, clips: int, keep: str, train_steps: int, paper: str = "") -> dict:
    cmd = [sys.executable, __file__, "--child", keep, "--store", str(store), "--clips", str(clips),
           "--train-steps", str(train_steps), *(["--paper", paper] if paper else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--dir", type=Path, help="where to write the store (default: a temporary folder, removed)")
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--paper-steps", type=int, default=2, help="steps with the recipe's encoder (0: skip)")
    ap.add_argument("--paper", default="", help=argparse.SUPPRESS)
    ap.add_argument("--child", choices=["float16", "float32"], help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.store, args.clips, args.child, args.train_steps, args.paper)))
        return
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-tokens-"))
    store = work / "store"
    try:
        t0 = time.perf_counter()
        if not (store / "maps").is_dir():
            write_store(store, args.clips)
        print(f"store of {args.clips} clips of ({T}, {N}, {D}) float16 ready in {time.perf_counter() - t0:.0f} s "
              f"(load average {os.getloadavg()[0]:.1f})")
        rows = {}
        for keep in ("float16", "float32"):
            half, full = (measure(store, n, keep, args.train_steps) for n in (args.clips // 2, args.clips))
            per_clip = (full["rss_load"] - half["rss_load"]) / (full["clips"] - half["clips"])
            at_target = full["rss_train"] + per_clip * (TARGET - full["clips"])
            rows[keep] = {"half": half, "full": full, "rss_per_clip": per_clip, "extrapolated_16000": at_target}
            print(f"{keep}: peak RSS {full['rss_train'] / GIB:.2f} GiB at {full['clips']} clips "
                  f"(load {full['rss_load'] / GIB:.2f}, normaliser {full['rss_norm'] / GIB:.2f}; array "
                  f"{full['array_bytes'] / GIB:.2f} GiB; start {full['rss_start'] / GIB:.2f}), "
                  f"{half['rss_train'] / GIB:.2f} GiB at {half['clips']}; {per_clip / 1024 ** 2:.2f} MiB/clip "
                  f"-> {at_target / GIB:.1f} GiB at {TARGET}; load {full['load_s']:.1f} s, "
                  f"normaliser {full['norm_s']:.1f} s, {full['step_s']:.2f} s per step of 64")
        ratio = rows["float32"]["extrapolated_16000"] / rows["float16"]["extrapolated_16000"]
        print(f"float32 / float16 at {TARGET} clips: {ratio:.2f}x")
        base = rows["float16"]["extrapolated_16000"] - (rows["float16"]["full"]["rss_train"]
                                                        - rows["float16"]["full"]["rss_norm"])
        for how in ("plain", "recompute") if args.paper_steps else ():
            paper = measure(store, args.clips, "float16", args.paper_steps, paper=how)
            extra = paper["rss_train"] - paper["rss_norm"]
            rows[f"float16_paper_{how}"] = {"full": paper, "training_extra": extra, "extrapolated_16000": base + extra}
            print(f"float16, dual_branch_2023 encoder ({how}): peak RSS {paper['rss_train'] / GIB:.2f} GiB at "
                  f"{args.clips} clips (+{extra / GIB:.2f} GiB over the loaded data for training) -> "
                  f"{(base + extra) / GIB:.1f} GiB at {TARGET}; {paper['step_s']:.1f} s per step of 64")
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps({"clips": args.clips, "shape": [T, N, D], "rows": rows,
                                       "load_average": os.getloadavg()}, indent=2))
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
