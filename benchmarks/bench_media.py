"""Decode-only and detect-only throughput on generated sample clips (or your own videos).

    .venv/bin/python benchmarks/bench_media.py [--clips 8] [--duration 3] [--size 320x240]
                                               [--input DIR_OR_MANIFEST] [--model face.tflite]

Decode: extract.media.decode_frames per sampling policy; "out f/s" counts returned
(RGB) frames, "src f/s" the source frames the decoder went through, "x realtime" clip
seconds per wall second. Detect: the BlazeFace detector alone on pre-decoded frames,
then the whole FaceCropper (detect + track + fill + smooth + crop to 224) on the same frames.
BlazeFace, mediapipe vs ours: the time to build the detector in a fresh process (imports, model
loading, first call; median of 3 processes) and detect-only frames/s on the same frames (wall and
CPU time per frame, best of --repeat, the two alternating) for mediapipe's Tasks FaceDetector
(IMAGE mode, as eri-pipeline ran it before) and extract.blazeface on LiteRT (1 thread), each
BlazeFace model whose weights are present. Needs mediapipe installed (the test extras).
Single process; set OMP/threads as you like outside.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extract.media import Sampling, decode_frames, probe  # noqa: E402
from pipelines.dataset import discover_clips  # noqa: E402

POLICIES = {"all frames (every=1)": Sampling(every=1), "fps=5": Sampling(fps=5),
            "frames=32": Sampling(frames=32), "every=30": Sampling(every=30)}


def _clips(args, tmp: Path) -> list[Path]:
    if args.input:
        return [c.path for c in discover_clips(args.input)][: args.clips]
    from pipelines.sample_data import make_sample_dataset

    width, height = (int(v) for v in args.size.lower().split("x"))
    t = time.perf_counter()
    ds = make_sample_dataset(tmp, n_clips=args.clips, seed=0, duration=args.duration, size=(width, height))
    print(f"generated {args.clips} clips of {args.duration:g} s at {width}x{height} in {time.perf_counter() - t:.1f} s")
    return [c.path for c in ds.clips]


def _model(args) -> Path:
    if args.model:
        return Path(args.model)
    from extract.weights import WeightsError, resolve

    try:
        return resolve("blazeface").path
    except WeightsError as exc:
        sys.exit(f"{exc}\n(or pass --model PATH to face_detection_short_range.tflite)")


def bench_decode(paths: list[Path], repeat: int) -> dict[str, list]:
    src_frames = sum(probe(p).n_frames for p in paths)
    seconds = sum(probe(p).duration for p in paths)
    rows = {}
    for name, sampling in POLICIES.items():
        best, out = float("inf"), 0
        for _ in range(repeat):
            t = time.perf_counter()
            out = sum(len(decode_frames(p, sampling).times) for p in paths)
            best = min(best, time.perf_counter() - t)
        rows[name] = [out, out / best, src_frames / best, seconds / best]
    return rows


def bench_detect(paths: list[Path], model: Path, repeat: int) -> dict[str, list]:
    from extract.faces import FaceCropper

    clips = [decode_frames(p, Sampling(fps=5)) for p in paths]
    images = [img for c in clips for img in c.images]
    rows = {}
    with FaceCropper(model) as cropper:
        cropper.detector(images[0])  # warm-up (first call builds the graph)
        for name, work in (("detector only", lambda: [cropper.detector(i) for i in images]),
                           ("detect+track+crop 224", lambda: [cropper.crop(c) for c in clips])):
            best = float("inf")
            for _ in range(repeat):
                t = time.perf_counter()
                work()
                best = min(best, time.perf_counter() - t)
            rows[name] = [len(images), len(images) / best, 1000 * best / len(images)]
    return rows


_BUILD = {
    "mediapipe Tasks": """
import numpy as np, mediapipe as mp
from mediapipe.tasks.python import BaseOptions, vision
d = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
    base_options=BaseOptions(model_asset_path=MODEL), running_mode=vision.RunningMode.IMAGE))
d.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))
""",
    "ours (faces extractor)": """
from extract.faces_feature import SPEC
from extract.specs import BuildOptions
SPEC.build(BuildOptions(config=SPEC.config_with({"detector": DETECTOR}), weights_path=MODEL))
""",
}


def _build_seconds(code: str, model: Path, detector: str) -> float:
    """Seconds from the first line of a fresh interpreter to a detector ready (median of 3 processes)."""
    script = (f"import time; t = time.perf_counter()\nMODEL, DETECTOR = {str(model)!r}, {detector!r}\n{code}\n"
              "print(time.perf_counter() - t)")
    root = Path(__file__).resolve().parents[1]
    runs = [float(subprocess.run([sys.executable, "-c", script], cwd=root, check=True, capture_output=True,
                                 text=True).stdout.split()[-1]) for _ in range(3)]
    return statistics.median(runs)


def bench_blazeface(paths: list[Path], repeat: int) -> list[list] | None:
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError:
        return None
    from extract.blazeface import BlazeFaceDetector
    from extract.weights import WeightsError, resolve

    images = [img for p in paths for img in decode_frames(p, Sampling(fps=5)).images]
    rows = []
    for detector, entry in (("short", "blazeface"), ("full", "blazeface_full_range")):
        try:
            model = resolve(entry).path
        except WeightsError:
            continue
        tasks = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(model)), running_mode=vision.RunningMode.IMAGE))
        ours = BlazeFaceDetector(model, 0.5)
        work = {"mediapipe Tasks": lambda: [tasks.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=i))
                                            for i in images],
                "ours (faces extractor)": lambda: [ours(i) for i in images]}
        best = {name: (float("inf"), float("inf")) for name in work}
        for _ in range(repeat):
            for name, run in work.items():
                wall, cpu = time.perf_counter(), time.process_time()
                run()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                best[name] = min(best[name], (wall, cpu))
        tasks.close()
        for name in work:
            wall, cpu = best[name]
            rows.append([f"{entry} {name}", _build_seconds(_BUILD[name], model, detector), len(images) / wall,
                         1000 * wall / len(images), 1000 * cpu / len(images)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--input", help="directory of videos or manifest CSV instead of generated clips")
    parser.add_argument("--model", help="BlazeFace .tflite (default: weights entry 'blazeface')")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    model = _model(args)
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        paths = _clips(args, Path(tmp))
        info = probe(paths[0])
        print(f"{len(paths)} clips, first: {info.width}x{info.height} @ {info.fps:.2f} fps, {info.duration:.2f} s, "
              f"{info.video_codec}")
        print(f"\n{'decode policy':24s} {'frames out':>10s} {'out f/s':>9s} {'src f/s':>9s} {'x realtime':>10s}")
        for name, (n, out_fps, src_fps, rt) in bench_decode(paths, args.repeat).items():
            print(f"{name:24s} {n:10d} {out_fps:9.1f} {src_fps:9.1f} {rt:10.1f}")
        print(f"\n{'detection (fps=5 frames)':24s} {'frames':>10s} {'f/s':>9s} {'ms/frame':>9s}")
        for name, (n, fps, ms) in bench_detect(paths, model, args.repeat).items():
            print(f"{name:24s} {n:10d} {fps:9.1f} {ms:9.2f}")
        rows = bench_blazeface(paths, args.repeat)
        if rows is None:
            print("\nBlazeFace mediapipe vs ours: skipped (mediapipe is not installed: pip install -e '.[test]')")
            return
        print(f"\n{'BlazeFace (fps=5 frames)':44s} {'build s':>8s} {'f/s':>8s} {'ms/frame':>9s} {'CPU ms':>7s}")
        for name, build, fps, ms, cpu in rows:
            print(f"{name:44s} {build:8.2f} {fps:8.1f} {ms:9.2f} {cpu:7.2f}")


if __name__ == "__main__":
    main()
