"""Run every benchmark once, one after another (they must not share the 2 cores), printing their tables.

    .venv/bin/python benchmarks/run_all.py [--only store,media,...]

Figures and the commands that produced them are recorded in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "store": ["bench_store.py"],
    "media": ["bench_media.py"],
    "video_backbones": ["bench_video_backbones.py", "--threads", "2"],
    "deepspectrum": ["bench_deepspectrum.py"],
    "audio": ["bench_audio.py", "--seconds", "60", "--repeat", "3"],
    "pipeline": ["bench_pipeline.py"],
    "fusion": ["bench_fusion.py"],
    "fusion_quality": ["bench_fusion_quality.py"],
    "models": ["bench_models.py"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    only = [o for o in parser.parse_args().only.split(",") if o] or list(BENCHMARKS)
    failed = []
    for name in only:
        script, *args = BENCHMARKS[name]
        print(f"\n=== {name}: {Path(sys.executable).name} benchmarks/{script} {' '.join(args)}", flush=True)
        start = time.perf_counter()
        if subprocess.run([sys.executable, str(HERE / script), *args]).returncode:
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
