"""Bare frames/s of the visual backbones on random 224x224 face crops, at the pipeline's batch size.

For each backbone (random-initialised checkpoint in its official layout: speed does not depend on the
values) two figures are measured on the same batches:
  * bare:     the network's forward on an already normalised (B, 3, S, S) tensor (`extractor.forward`),
              under torch.inference_mode (fp16 autocast on CUDA), as the pipeline runs it;
  * extractor: `extractor.run(crops, times)` on uint8 crops, i.e. + resize/normalise + per-clip split.

    .venv/bin/python benchmarks/bench_video_backbones.py [--features resnet18_affectnet,posterv2]
        [--batch-size 64] [--rounds 3] [--device cpu|cuda] [--threads N] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from extract.catalog import FEATURE_MODULES, catalog
from extract.specs import BuildOptions, FeatureSpec

CROP = 224


def find_spec(name: str) -> FeatureSpec:
    try:
        return catalog().get(name)
    except KeyError:
        raise
    except Exception:  # another listed module is not importable: look in the modules one by one
        import importlib

        for module_name in FEATURE_MODULES:
            try:
                module = importlib.import_module(module_name)
                specs = getattr(module, "SPECS", None) or (module.SPEC,)
            except (ImportError, AttributeError):
                continue
            for spec in specs:
                if spec.name == name:
                    return spec
        raise KeyError(f"feature {name!r} not found") from None


def build(spec: FeatureSpec, batch_size: int, device: str, tmp: Path):
    from bench_common import random_weights

    paths = random_weights(tmp / "weights", [spec])
    if not paths:
        raise SystemExit(f"{spec.name}: no random checkpoint maker")
    weights = {k: str(v) for k, v in paths.items()}
    return spec.build(BuildOptions(config=spec.config_with(), device=device, batch_size=batch_size,
                                   weights_path=weights[spec.weights_entries()[0]], weights=weights))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def bench(spec: FeatureSpec, batch_size: int, rounds: int, device: str, tmp: Path) -> dict:
    """Alternate one bare batch and one extractor batch per round (so load drift hits both alike);
    report frames/s of the median and of the best round."""
    extractor = build(spec, batch_size, device, tmp)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, size=(batch_size, CROP, CROP, 3), dtype=np.uint8)
    x = extractor.preprocess(crops, device)
    use_fp16 = device.startswith("cuda")
    clips = [crops[: batch_size // 3], crops[batch_size // 3:]]  # frames of two clips share the batch
    times = [np.arange(len(c)) * 0.2 for c in clips]

    def bare() -> None:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=use_fp16):
            extractor.forward(x)

    def full() -> None:
        extractor.run(clips, times)

    bare(), full()  # warm-up: allocator, oneDNN/cuDNN algorithm choice
    bare_s, full_s = [], []
    for _ in range(rounds):
        bare_s.append(_timed(bare, device))
        full_s.append(_timed(full, device))
    params = sum(p.numel() for p in extractor.model.parameters())
    fps = lambda secs: round(batch_size / secs, 2)  # noqa: E731
    return {"feature": spec.name, "dim": spec.output_shape().dim, "params": params, "batch_size": batch_size, "rounds": rounds,
            "bare_fps_median": fps(float(np.median(bare_s))), "bare_fps_best": fps(min(bare_s)),
            "extractor_fps_median": fps(float(np.median(full_s))), "extractor_fps_best": fps(min(full_s))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", default="resnet18_affectnet,posterv2")
    parser.add_argument("--batch-size", type=int, default=BuildOptions(config={}).batch_size)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (one batch each way) after a warm-up")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"torch {torch.__version__}, device {args.device} ({device_name}), threads {torch.get_num_threads()}, "
          f"batch {args.batch_size}, {args.rounds} rounds; frames/s as median (best)")
    print(f"{'feature':<22}{'params':>12}{'bare f/s':>20}{'extractor f/s':>20}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.features.split(","):
            row = bench(find_spec(name.strip()), args.batch_size, args.rounds, args.device, Path(tmp))
            rows.append(row)
            bare = f"{row['bare_fps_median']:.2f} ({row['bare_fps_best']:.2f})"
            full = f"{row['extractor_fps_median']:.2f} ({row['extractor_fps_best']:.2f})"
            print(f"{row['feature']:<22}{row['params']:>12,}{bare:>20}{full:>20}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": args.device, "device_name": device_name,
                                         "threads": torch.get_num_threads(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
