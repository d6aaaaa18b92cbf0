"""Fusion training benchmark on synthetic features written to a real store.

Default: 16,000 training clips (Hume-Reaction's train size) + 1,600 validation clips,
two features of dims 1024 (audio) and 768 (video), T = 32, every head at its default
size. Reports, per head:
  - epoch time and training clips/s (mean over --timing-epochs full epochs),
  - the data-loading share of an epoch: batch assembly from the in-memory matrices
    (indexing + standardisation) over the epoch's training time (target < 10 %),
  - the time to reach the plateau: wall time until the first epoch whose validation
    mean PCC is within --plateau-tol of the best of a run with early stopping
    (patience --plateau-patience, at most --plateau-epochs epochs, on --plateau-clips
    training clips).
Also the one-off cost of loading both features from the store into memory.

    .venv/bin/python benchmarks/bench_fusion.py                      # full benchmark
    .venv/bin/python benchmarks/bench_fusion.py --clips 2000 --heads lstm,te --plateau-clips 2000
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from feature_store import FeatureStore
from fusion.config import resolve_config
from fusion.data import Normalizer, load_fusion_data
from fusion.heads import build_head, list_heads
from fusion.labels import load_labels
from fusion.synthetic import SyntheticSpec, noise_ceiling, write_synthetic
from fusion.train import set_seed, train_model


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=16000, help="training clips")
    p.add_argument("--val-clips", type=int, default=1600)
    p.add_argument("--dims", default="1024,768", help="audio,video feature dims")
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--heads", default="all")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--timing-epochs", type=int, default=1)
    p.add_argument("--plateau-heads", default="all", help="heads for the plateau run ('none' to skip)")
    p.add_argument("--plateau-clips", type=int, default=0, help="training clips for it (0 = --clips)")
    p.add_argument("--plateau-epochs", type=int, default=30)
    p.add_argument("--plateau-patience", type=int, default=5)
    p.add_argument("--plateau-tol", type=float, default=0.01)
    p.add_argument("--workdir", type=Path, help="store + labels here (default: a temporary dir, removed)")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    return p.parse_args(argv)


def heads_of(arg: str) -> list[str]:
    names = [h.name for h in list_heads() if not h.closed_form]  # epochs of gradient-trained heads
    if arg == "none":
        return []
    return names if arg == "all" else [h.strip() for h in arg.split(",")]


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    da, dv = (int(x) for x in a.dims.split(","))
    work = a.workdir or Path(tempfile.mkdtemp(prefix="bench_fusion_"))
    n = a.clips + a.val_clips
    spec = SyntheticSpec(n_clips=n, audio_dim=da, video_dim=dv, audio_steps=(a.steps, a.steps),
                         video_steps=(a.steps, a.steps), split=(a.clips / n, a.val_clips / n, 0.0))
    results: dict = {"clips": a.clips, "val_clips": a.val_clips, "dims": [da, dv], "steps": a.steps,
                     "batch_size": a.batch_size, "threads": torch.get_num_threads(),
                     "noise_ceiling": noise_ceiling(spec.label_noise), "heads": {}}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); workdir {work}", flush=True)
    t0 = time.perf_counter()
    _, refs = write_synthetic(work / "store", work / "labels.csv", spec, keep_arrays=False)
    results["generate_and_write_s"] = time.perf_counter() - t0
    labels = load_labels(work / "labels.csv")
    cfg0 = resolve_config(None, {"features": refs, "steps": a.steps, "batch_size": a.batch_size})
    t0 = time.perf_counter()
    data = load_fusion_data(FeatureStore(work / "store"), refs, labels.ids, cfg0.data_policy())
    load_s = time.perf_counter() - t0
    gib = sum(b.data.numel() * 4 for b in data.blocks.values()) / 2**30
    results["store_load"] = {"seconds": load_s, "clips_per_s": n / load_s, "gib": gib}
    print(f"generated+written in {results['generate_and_write_s']:.1f} s; loaded {n} clips "
          f"({gib:.2f} GiB) from the store in {load_s:.1f} s ({n / load_s:.0f} clips/s)", flush=True)
    y = torch.from_numpy(labels.values)
    train_rows = torch.tensor([i for i, s in enumerate(labels.split) if s == "train"])
    val_rows = torch.tensor([i for i, s in enumerate(labels.split) if s == "val"])
    norm = Normalizer.fit(data, train_rows)

    for head in heads_of(a.heads):
        cfg = resolve_config(None, {"features": refs, "head": head, "epochs": a.timing_epochs,
                                    "patience": 10**6, "batch_size": a.batch_size})
        set_seed(0)
        model = build_head(head, data.streams(), cfg.head_options)
        res = train_model(model, data, norm, y, train_rows, val_rows, cfg, 0)
        ep = res.history
        train_s = sum(h["train_seconds"] for h in ep) / len(ep)
        data_s = sum(h["data_seconds"] for h in ep) / len(ep)
        epoch_s = sum(h["seconds"] for h in ep) / len(ep)
        results["heads"][head] = {"params": sum(p.numel() for p in model.parameters()),
                                  "epoch_s": epoch_s, "train_s": train_s, "eval_s": epoch_s - train_s,
                                  "clips_per_s": len(train_rows) / train_s, "data_share": data_s / train_s}
        r = results["heads"][head]
        print(f"{head:<20} epoch {epoch_s:7.1f} s (train {train_s:.1f} s, val {r['eval_s']:.1f} s)  "
              f"{r['clips_per_s']:7.0f} clips/s  data share {100 * r['data_share']:.2f} %  "
              f"{r['params'] / 1e6:.2f} M params", flush=True)

    plateau_rows = train_rows[: a.plateau_clips] if a.plateau_clips else train_rows
    for head in heads_of(a.plateau_heads):
        cfg = resolve_config(None, {"features": refs, "head": head, "epochs": a.plateau_epochs,
                                    "patience": a.plateau_patience, "batch_size": a.batch_size})
        set_seed(0)
        model = build_head(head, data.streams(), cfg.head_options)
        t0 = time.perf_counter()
        res = train_model(model, data, norm, y, plateau_rows, val_rows, cfg, 0)
        total = time.perf_counter() - t0
        best = max(h["val_mean_pcc"] for h in res.history)
        reached = next(h for h in res.history if h["val_mean_pcc"] >= best - a.plateau_tol)
        until = sum(h["seconds"] for h in res.history[: reached["epoch"]])
        results["heads"].setdefault(head, {})["plateau"] = {
            "train_clips": len(plateau_rows), "epoch": reached["epoch"], "seconds": until,
            "best_val_mean_pcc": best, "epochs_run": len(res.history), "total_s": total,
            "early_stopped": len(res.history) < a.plateau_epochs}
        note = "" if len(res.history) < a.plateau_epochs else " [epoch cap hit: still improving]"
        print(f"{head:<20} plateau (within {a.plateau_tol}) at epoch {reached['epoch']} after {until:.0f} s; "
              f"best val mean PCC {best:.3f} (ceiling {results['noise_ceiling']:.3f}); "
              f"{len(res.history)} epochs run on {len(plateau_rows)} clips{note}", flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
