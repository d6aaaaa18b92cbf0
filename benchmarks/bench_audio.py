"""Bare throughput of the audio extractors (no decoding, no store), as real-time factors.

    .venv/bin/python benchmarks/bench_audio.py [--seconds 60] [--clips 6] [--repeat 3] [--device cpu]
        [--threads N] [--only mfcc,egemaps,egemaps_lld,wav2vec2_tiny,wav2vec2_base]

For each extractor: `extractor.run(...)` on generated 16 kHz speech-like audio, (a) one clip of
--seconds, (b) --clips clips of --seconds/--clips each in one call (how the pipeline batches).
Best of --repeat after a warm-up run. RTF = processing seconds / audio seconds (lower is better);
for wav2vec2 also transformers' plain Wav2Vec2Model forward on the single clip ("HF forward":
no chunking, no batching), to show what the extractor adds;
"x realtime" = 1/RTF. wav2vec2 runs random-initialised checkpoints saved as Hugging Face
directories and loaded through the extractor's own loader: tiny (hidden 32, 2 layers, base conv
stack) and base-sized (Wav2Vec2Config() = wav2vec2-base architecture, 95 M parameters).
Compare with end-to-end `eri-extract --modality audio` runs (decoding + store) for the same audio.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from extract.specs import BuildOptions

SR = 16000
ALL = ("mfcc", "egemaps", "egemaps_lld", "wav2vec2_tiny", "wav2vec2_base")


def synthetic_speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 130 + 50 * np.sin(2 * np.pi * 0.4 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    return (0.15 * voiced * envelope + 0.01 * rng.normal(size=t.size)).astype(np.float32)


def wav2vec2_checkpoint(size: str, root: Path) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config() if size == "base" else Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32,) * 7, num_conv_pos_embedding_groups=16)
    Wav2Vec2Model(config).save_pretrained(root / size)
    return root / size


def build(name: str, device: str, root: Path):
    options = dict(config={}, device=device, batch_size=64)
    if name == "mfcc":
        from extract.audio.mfcc import SPEC
    elif name == "egemaps":
        from extract.audio.egemaps import SPEC_FUNCTIONALS as SPEC
    elif name == "egemaps_lld":
        from extract.audio.egemaps import SPEC_LLD as SPEC
    else:
        from extract.audio.wav2vec2 import SPEC
        options["weights_path"] = str(wav2vec2_checkpoint(name.split("_")[1], root))
    return SPEC.build(BuildOptions(**options))


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up (lazy init, allocator, caches)
    best = float("inf")
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default=",".join(ALL))
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    one = [synthetic_speech(args.seconds)]
    many = [synthetic_speech(args.seconds / args.clips, seed=i + 1) for i in range(args.clips)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}; "
          f"audio: 1 x {args.seconds:g} s and {args.clips} x {args.seconds / args.clips:g} s")
    print(f"{'extractor':<15}{'input':>14}{'seconds':>10}{'RTF':>10}{'x realtime':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            if name not in ALL:
                raise SystemExit(f"unknown extractor {name!r}; choose from {', '.join(ALL)}")
            extractor = build(name, args.device, Path(tmp))
            inputs = ((f"1x{args.seconds:g}s", one), (f"{args.clips}x{args.seconds / args.clips:g}s", many))
            for label, waves in inputs:
                seconds = best_time(lambda: extractor.run(waves, SR), args.repeat)
                rtf = seconds / args.seconds
                print(f"{name:<15}{label:>14}{seconds:>10.3f}{rtf:>10.4f}{1 / rtf:>12.1f}", flush=True)
            if name.startswith("wav2vec2"):  # transformers' own forward on the same clip, for reference
                x = torch.from_numpy(one[0]).to(args.device)[None]
                with torch.inference_mode():
                    seconds = best_time(lambda: extractor.model(x), args.repeat)
                rtf = seconds / args.seconds
                print(f"{'  HF forward':<15}{'1x' + format(args.seconds, 'g') + 's':>14}{seconds:>10.3f}"
                      f"{rtf:>10.4f}{1 / rtf:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
