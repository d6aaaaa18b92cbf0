"""Does a head learn from token-set features what the ridge baseline (mean over tokens) cannot?

    .venv/bin/python benchmarks/bench_tokens_quality.py [--clips 800,3000 --heads tcn_transformer,conv_pool]

Generated store (float16, 16 steps x 16 tokens x 8 channels, i.i.d. N(0, 1) tokens) with labels
  y_e = sigmoid(local_e + 0.7 global),
  local_e = the time-mean of channel c_e of token position p_e (scaled to unit variance),
  global  = the time- and token-mean of channel 7 (unit variance),
in two variants: "one position" (p_e the same for all 7 emotions, c_e differ) and "seven positions"
(p_e drawn per emotion). The ridge baseline sees the token mean, in which local_e is diluted 1:16, so
it gets about the global part; a head whose spatial encoder picks the positions can get both. Every
fit is a plain `run_fit` with the head's defaults (eri-fit without flags), 80/20 split.
Results: benchmarks/results/tokens_quality.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

T, K, D = 16, 16, 8
EMOTIONS = ["Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear", "Surprise"]
RESULTS = Path(__file__).resolve().parent / "results" / "tokens_quality.json"


def write_set(root: Path, clips: int, positions: str, seed: int = 0) -> None:
    from feature_store import FeatureStore, fingerprint_of

    rng = np.random.default_rng(seed)
    pos = np.full(7, 5) if positions == "one" else rng.choice(K, 7)
    ch = rng.integers(0, D - 1, 7)
    spec = {"name": "maps", "dim": D, "item_shape": [K, D], "dtype": "float16", "modality": "video",
            "bench": [positions, seed]}
    fd = FeatureStore(root / "store").feature_dir("maps", fingerprint_of(spec), spec=spec)
    labels = []
    with fd.open_shard() as shard:
        for i in range(clips):
            x = rng.standard_normal((T, K, D)).astype(np.float32)
            local = x[:, pos, ch].mean(0) * np.sqrt(T)
            glob = x[:, :, D - 1].mean() * np.sqrt(T * K)
            labels.append(1 / (1 + np.exp(-(local + 0.7 * glob))))
            shard.add(f"{i:05d}", x.astype(np.float16), np.arange(T) * 0.5)
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["File_ID", *EMOTIONS])
        w.writerows([f"{i:05d}", *(f"{v:.4f}" for v in y)] for i, y in enumerate(labels))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="800,3000")
    ap.add_argument("--heads", default="tcn_transformer,conv_pool")
    ap.add_argument("--positions", default="one,seven")
    args = ap.parse_args()
    from fusion.config import resolve_config
    from fusion.experiment import run_fit

    rows = []
    print(f"load average {os.getloadavg()[0]:.1f}")
    for positions in args.positions.split(","):
        for clips in (int(c) for c in args.clips.split(",")):
            with tempfile.TemporaryDirectory(prefix="bench-tokq-") as tmp:
                root = Path(tmp)
                write_set(root, clips, positions)
                for head in args.heads.split(","):
                    cfg = resolve_config(None, {"features": ["maps"], "head": head, "threads": 1, "steps": T})
                    t0 = time.perf_counter()
                    m = run_fit(cfg, root / "store", root / "labels.csv", root / f"run-{head}", plots=False).metrics
                    row = {"positions": positions, "clips": clips, "head": head,
                           "model": m["ensemble"]["mean_pcc"], "ridge": m["baseline"]["val"]["mean_pcc"],
                           "best_epoch": m["models"][0]["best_epoch"], "seconds": time.perf_counter() - t0}
                    rows.append(row)
                    print(f"{positions:>5} position(s), {clips:5d} clips, {head:16s} val mean PCC {row['model']:.3f} "
                          f"(ridge {row['ridge']:.3f}), best epoch {row['best_epoch']}, {row['seconds']:.0f} s",
                          flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "load_average": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
