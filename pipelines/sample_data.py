"""Generated sample media: real-face clips with speech, bad variants, and a labelled dataset.

Shared by the demo, the tests and the benchmarks. A clip is a real face photograph
(pipelines.sample_scene) moving and zooming over a background at 25 fps, H.264 (mpeg4 if
PyAV lacks libx264), with speech (pipelines.sample_voice) as AAC; the per-frame face box is
known exactly. Kinds (see VARIANTS): face, no_face, no_audio, odd_fps (29.97), low_fps
(12.5), vfr, late_start (first frame at 1 s), rotated (display matrix 90°), truncated
(index present, data cut), truncated_index (MP4 cut before its index), zero_length,
not_media, corrupt_packet (one video packet in the middle overwritten), two_audio (a second
audio stream, a different voice), audio_only (no video stream; give a .m4a path). The
container follows the file extension (pipelines.sample_encode). Labels are derived from each clip's parameters (look and voice), so a model
trained on the features has something real to learn.

    python -m pipelines.sample_data OUT_DIR --clips 24
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from pipelines import sample_scene as scene
from pipelines.sample_voice import speech

log = logging.getLogger(__name__)

EMOTIONS = ("Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear", "Surprise")


@dataclass(frozen=True)
class ClipParams:
    """What varies between clips; every value in a fixed range (see `random`)."""

    person: str = "astronaut"
    mirror: bool = False
    brightness: float = 1.0   # 0.75 .. 1.25
    warmth: float = 0.0       # -1 (blue) .. 1 (orange)
    height: float = 0.9       # sprite height / frame height, 0.8 .. 1.0
    sway: float = 0.5         # horizontal motion amplitude, 0 .. 1 (of the free room)
    speed: float = 0.4        # motion frequency Hz, 0.2 .. 0.8
    zoom: float = 0.08        # relative zoom amplitude, 0 .. 0.15
    f0: float = 150.0         # voice pitch Hz, 100 .. 240
    syllable_rate: float = 4.5  # 3 .. 6.5
    loudness: float = 0.5     # peak, 0.2 .. 0.9
    background: int = 0       # background seed

    @classmethod
    def random(cls, rng: np.random.Generator) -> "ClipParams":
        return cls(person=str(rng.choice(sorted(scene.PORTRAITS))), mirror=bool(rng.random() < 0.5),
                   brightness=rng.uniform(0.75, 1.25), warmth=rng.uniform(-1, 1), height=rng.uniform(0.8, 1.0),
                   sway=rng.uniform(0, 1), speed=rng.uniform(0.2, 0.8), zoom=rng.uniform(0, 0.15),
                   f0=rng.uniform(100, 240), syllable_rate=rng.uniform(3, 6.5), loudness=rng.uniform(0.2, 0.9),
                   background=int(rng.integers(2**31)))


def emotion_scores(p: ClipParams) -> dict[str, float]:
    """Deterministic labels in [0, 1] from what can be seen and heard in the clip."""
    b = (p.brightness - 0.75) / 0.5
    w = (p.warmth + 1) / 2
    pitch = (p.f0 - 100) / 140
    rate = (p.syllable_rate - 3) / 3.5
    loud = (p.loudness - 0.2) / 0.7
    hopper = float(p.person == "hopper")
    raw = {
        "Adoration": 0.15 + 0.45 * w + 0.25 * hopper,
        "Amusement": 0.1 + 0.5 * b + 0.3 * rate,
        "Anxiety": 0.1 + 0.45 * pitch + 0.3 * (p.speed - 0.2) / 0.6,
        "Disgust": 0.05 + 0.5 * (1 - w) * (1 - b),
        "Empathic-Pain": 0.05 + 0.4 * (1 - rate) + 0.3 * (1 - loud) * hopper,
        "Fear": 0.05 + 0.35 * pitch + 0.35 * (1 - b),
        "Surprise": 0.05 + 0.45 * loud + 0.35 * p.zoom / 0.15,
    }
    return {k: round(float(np.clip(v, 0.0, 1.0)), 4) for k, v in raw.items()}


@dataclass
class SampleClip:
    path: Path
    kind: str
    params: ClipParams
    fps: float                  # nominal rate (mean rate for vfr)
    times: np.ndarray           # (N,) presentation time of every frame, seconds from the video start
    face_boxes: np.ndarray      # (N, 4) float32 xyxy in display pixels; NaN rows: no face in that frame
    size: tuple[int, int]       # display (width, height)
    has_audio: bool
    duration: float
    start_time: float = 0.0
    rotation: int = 0
    decodable: bool = True      # False for the broken variants

    @property
    def id(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class ClipOptions:
    duration: float = 3.0
    fps: float = 25.0
    size: tuple[int, int] = (320, 240)
    face: bool = True
    audio: bool = True
    vfr: bool = False
    start_time: float = 0.0
    rotation: int = 0             # counter-clockwise display rotation written as side data
    faststart: bool = False       # MP4 index at the front (then a cut file still opens)
    damage: str | None = None     # None | truncate | zero_length | not_media | corrupt_packet
    video: bool = True            # False: audio only
    second_audio: bool = False    # a second audio stream (another voice: pitch × 1.5, slower)
    audio_rate: int = 44100
    voice: str = "auto"


VARIANTS: dict[str, dict] = {
    "face": {},
    "no_face": {"face": False},
    "no_audio": {"audio": False},
    "odd_fps": {"fps": 30000 / 1001},
    "low_fps": {"fps": 12.5},
    "vfr": {"vfr": True},
    "late_start": {"start_time": 1.0},
    "rotated": {"rotation": 90},
    "truncated": {"faststart": True, "damage": "truncate"},
    "truncated_index": {"damage": "truncate"},
    "zero_length": {"damage": "zero_length"},
    "not_media": {"damage": "not_media"},
    "corrupt_packet": {"damage": "corrupt_packet"},
    "two_audio": {"second_audio": True},
    "audio_only": {"video": False},
}


def make_clip(path: str | Path, kind: str = "face", *, seed: int = 0, params: ClipParams | None = None,
              **options) -> SampleClip:
    """Write one clip of `kind` (a VARIANTS key; `options` override ClipOptions fields)."""
    if kind not in VARIANTS:
        raise ValueError(f"unknown clip kind {kind!r}; known: {', '.join(VARIANTS)}")
    opts = replace(ClipOptions(), **{**VARIANTS[kind], **options})
    params = params or ClipParams.random(np.random.default_rng(seed))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    times = _frame_times(opts, np.random.default_rng(seed + 1))
    frames, boxes = _render(opts, params, times)
    wave, extra = None, ()
    if opts.audio:
        wave = speech(opts.duration, opts.audio_rate, f0=params.f0, syllable_rate=params.syllable_rate,
                      loudness=params.loudness, seed=seed, voice=opts.voice)
    if opts.second_audio:
        extra = (speech(opts.duration, opts.audio_rate, f0=1.5 * params.f0, syllable_rate=0.7 * params.syllable_rate,
                        loudness=params.loudness, seed=seed + 1, voice=opts.voice),)
    from pipelines.sample_encode import encode

    encode(path, frames if opts.video else None, times, wave, fps=opts.fps, audio_rate=opts.audio_rate,
           start_time=opts.start_time, rotation=opts.rotation, vfr=opts.vfr, faststart=opts.faststart,
           extra_waves=extra)
    _damage(path, opts.damage)
    w, h = opts.size
    return SampleClip(path=path, kind=kind, params=params, fps=len(times) / opts.duration if opts.vfr else opts.fps,
                      times=times, face_boxes=boxes, size=(w, h),
                      has_audio=opts.audio, duration=opts.duration, start_time=opts.start_time,
                      rotation=opts.rotation, decodable=opts.damage in (None, "corrupt_packet"))


def _frame_times(opts: ClipOptions, rng: np.random.Generator) -> np.ndarray:
    n = max(1, int(round(opts.duration * opts.fps)))
    if not opts.vfr:
        return np.arange(n) / opts.fps
    steps = rng.uniform(0.5, 1.6, n) / opts.fps   # irregular gaps, whole milliseconds
    times = np.round(np.concatenate([[0.0], np.cumsum(steps)[:-1]]), 3)
    return times[times < opts.duration - 0.5 / opts.fps]


def _render(opts: ClipOptions, p: ClipParams, times: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    w, h = opts.size
    rng = np.random.default_rng(p.background)
    bg = scene.background(w, h, rng)
    gain = np.array([1 + 0.12 * p.warmth, 1.0, 1 - 0.12 * p.warmth], np.float32) * p.brightness
    phase = rng.uniform(0, 2 * np.pi, 3)
    rgba = scene.sprite_rgba(p.person, gain) if opts.face else None
    aspect = rgba.shape[1] / rgba.shape[0] if opts.face else 1.0
    frames, boxes = [], np.full((len(times), 4), np.nan, np.float32)
    for i, t in enumerate(times):
        if not opts.face:
            frames.append((bg * 255 + 0.5).astype(np.uint8))
            continue
        height = h * p.height * (1 + p.zoom * np.sin(2 * np.pi * p.speed * 0.7 * t + phase[0]))
        room = max(0.0, (w - height * aspect) / 2)
        cx = w / 2 + p.sway * room * np.sin(2 * np.pi * p.speed * t + phase[1])
        cy = h * 0.55 + 0.05 * h * np.sin(2 * np.pi * p.speed * 1.3 * t + phase[2])
        affine = scene.sprite_affine(p.person, height, cx, cy, mirror=p.mirror)
        frames.append(scene.compose(bg, rgba, affine))
        boxes[i] = scene.face_box(p.person, affine)
    if opts.rotation % 360:
        # store pictures turned back so that a player applying the rotation shows them upright
        k = (opts.rotation // 90) % 4
        frames = [np.ascontiguousarray(np.rot90(f, k=-k)) for f in frames]
    return frames, boxes


def _damage(path: Path, how: str | None) -> None:
    if how is None:
        return
    if how == "zero_length":
        path.write_bytes(b"")
    elif how == "not_media":
        path.write_bytes(b"this is not a video file\n" * 100)
    elif how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "corrupt_packet":
        _overwrite_middle_video_packet(path)
    else:
        raise ValueError(f"unknown damage {how!r}")


def _overwrite_middle_video_packet(path: Path) -> None:
    """Fill the bytes of the middle video packet with 0xFF: the decoder rejects that packet (an
    invalid NAL unit size for H.264); the container and every other packet stay intact."""
    import av

    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size and p.pos]
    pos, size = packets[len(packets) // 2]
    data = bytearray(path.read_bytes())
    data[pos:pos + size] = b"\xff" * size
    path.write_bytes(bytes(data))


@dataclass
class SampleDataset:
    root: Path
    video_dir: Path
    labels_csv: Path
    clips: list[SampleClip] = field(default_factory=list)   # labelled clips, id order
    extra: list[SampleClip] = field(default_factory=list)   # variant clips (not in labels.csv)

    def __fspath__(self) -> str:
        return str(self.root)

    def __truediv__(self, other: str) -> Path:
        return self.root / other

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.clips]


def make_sample_dataset(out_dir: str | Path, n_clips: int = 24, seed: int = 0, duration: float = 3.0,
                        size: tuple[int, int] = (320, 240), fps: float = 25.0,
                        variants: Sequence[str] = ()) -> SampleDataset:
    """`out_dir/videos/00001.mp4 …` and `out_dir/labels.csv` (File_ID `[00001]`, 7 emotions, Split).

    `variants` adds clips of those kinds (named `<kind>.mp4`, not labelled), e.g. to exercise
    per-clip error handling in a pipeline run.
    """
    root = Path(out_dir)
    video_dir = root / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = _splits(n_clips, rng)
    clips, rows = [], []
    for i in range(n_clips):
        clip_seed = int(rng.integers(2**31))
        clip = make_clip(video_dir / f"{i + 1:05d}.mp4", "face", seed=clip_seed, duration=duration, size=size, fps=fps)
        clips.append(clip)
        rows.append({"File_ID": f"[{clip.id}]", **emotion_scores(clip.params), "Split": splits[i]})
    extra = [make_clip(video_dir / f"{kind}.mp4", kind, seed=seed + 7, duration=duration, size=size)
             for kind in variants]
    labels_csv = root / "labels.csv"
    tmp = labels_csv.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["File_ID", *EMOTIONS, "Split"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, labels_csv)
    log.info("wrote %d clips (+%d variants) and %s", n_clips, len(extra), labels_csv)
    return SampleDataset(root=root, video_dir=video_dir, labels_csv=labels_csv, clips=clips, extra=extra)


def _splits(n: int, rng: np.random.Generator) -> list[str]:
    """About 60/20/20 train/val/test, each non-empty when n >= 3."""
    n_val = n_test = max(1, round(0.2 * n)) if n >= 3 else 0
    names = ["val"] * n_val + ["test"] * n_test + ["train"] * (n - n_val - n_test)
    return [names[i] for i in rng.permutation(n)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.sample_data",
                                     description="Generate a labelled sample dataset of real-face clips with speech.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--clips", type=int, default=24, help="number of labelled clips (default 24)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per clip (default 3)")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT (default 320x240)")
    parser.add_argument("--variants", default="", help=f"comma-separated extra kinds: {', '.join(VARIANTS)}")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    variants = [v for v in args.variants.split(",") if v]
    ds = make_sample_dataset(args.out_dir, args.clips, args.seed, args.duration, (width, height), variants=variants)
    print(f"{len(ds.clips)} clips in {ds.video_dir}" + (f" (+{len(ds.extra)} variants)" if ds.extra else ""))
    print(f"labels: {ds.labels_csv}")


if __name__ == "__main__":
    main()
