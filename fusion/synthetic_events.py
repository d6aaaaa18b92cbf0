"""Synthetic ERI benchmark of transient events (the data `benchmarks/bench_fusion_quality.py`
measures eri-fit on), written in the MuSe-Reaction layout.

Per clip (10-15 s), each emotion k has an intensity u_k ~ U(0, 1) and one event: a
Gaussian bump in time (centre uniform in the clip, width ``widths_s[k]`` seconds) along a
fixed random direction of the feature space of one stream or of both (``streams[k]``:
"a", "v" or "av"; in both streams the event happens at the same moment, with its
amplitude split between them). The two streams have different rates and dims. On top:
``distractors`` events per stream per clip along fresh random directions (unrelated to
the labels), AR(1) noise with time constant ``ar_tau_s`` in every dimension, a per-clip
offset per dimension (speaker / webcam) and a fixed per-dimension scale and offset (raw
feature units). Observed labels are u + N(0, label_noise), clipped to [0, 1]; the noise
ceiling is the mean over emotions of Pearson r between u and the observed labels.

Pooled statistics (mean / max / min) see the events only through the maxima, blurred by
distractors and noise, so ridge on pooled features stays well below the ceiling while a
model that finds the events in time can approach it.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from scipy.signal import lfilter

from fusion.labels import EMOTION_COLUMNS
from fusion.metrics import pearson_columns


@dataclass(frozen=True)
class StreamSpec:
    name: str
    dim: int
    step_s: float


@dataclass(frozen=True)
class EventSpec:
    n_train: int = 1400
    n_devel: int = 300
    n_test: int = 100
    duration_s: tuple[float, float] = (10.0, 15.0)
    audio: StreamSpec = StreamSpec("eGeMAPS", 24, 0.1)
    video: StreamSpec = StreamSpec("VGGFace2", 32, 0.25)
    widths_s: tuple[float, ...] = (0.3, 0.6, 1.2, 0.4, 0.8, 1.6, 0.5)   # Gaussian sigma per emotion
    streams: tuple[str, ...] = ("a", "a", "v", "v", "av", "av", "av")
    event_gain: float = 2.2
    distractors: int = 4
    distractor_gain: float = 1.0
    ar_tau_s: float = 0.5
    noise: float = 1.0
    offset_sd: float = 1.0
    label_noise: float = 0.12
    seed: int = 0

    @property
    def n_clips(self) -> int:
        return self.n_train + self.n_devel + self.n_test


@dataclass
class EventData:
    ids: list[str]                  # "00001", ...
    partition: list[str]            # train / devel / test
    labels: np.ndarray              # (N, 7) observed, in [0, 1]
    clean: np.ndarray               # (N, 7) the intensities u
    audio: list[np.ndarray] = field(default_factory=list)   # (T_a, D_a) float32 per clip
    video: list[np.ndarray] = field(default_factory=list)


def observe(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(clean + rng.normal(0.0, sigma, clean.shape), 0.0, 1.0).astype(np.float32)


def noise_ceiling(spec: EventSpec, n: int = 200_000, seed: int = 12345) -> float:
    """Mean Pearson r between the intensities and the observed labels (a perfect model)."""
    rng = np.random.default_rng(seed)
    clean = rng.random((n, 7))
    return float(np.mean(pearson_columns(clean, observe(clean, spec.label_noise, rng))))


def _ar_noise(rng: np.random.Generator, length: int, dim: int, phi: float, burn: int = 30) -> np.ndarray:
    eps = rng.normal(0.0, np.sqrt(1.0 - phi * phi), (length + burn, dim))
    return lfilter([1.0], [1.0, -phi], eps, axis=0)[burn:]


def _stream(rng: np.random.Generator, spec: EventSpec, st: StreamSpec, which: str, dirs: np.ndarray,
            u: np.ndarray, centres: np.ndarray, duration: float, scale: np.ndarray,
            offset: np.ndarray) -> np.ndarray:
    length = max(2, int(duration / st.step_s))
    t = np.arange(length) * st.step_s
    x = spec.noise * _ar_noise(rng, length, st.dim, float(np.exp(-st.step_s / spec.ar_tau_s)))
    x += rng.normal(0.0, spec.offset_sd, st.dim)
    for k, where in enumerate(spec.streams):
        if which in where:
            amp = spec.event_gain * u[k] / np.sqrt(len(where))
            x += amp * np.exp(-0.5 * ((t - centres[k]) / spec.widths_s[k]) ** 2)[:, None] * dirs[k]
    for _ in range(spec.distractors):
        width = rng.choice(spec.widths_s)
        bump = np.exp(-0.5 * ((t - rng.uniform(0, duration)) / width) ** 2)
        x += spec.distractor_gain * rng.random() * bump[:, None] * rng.normal(0, 1, st.dim)
    return (x * scale + offset).astype(np.float32)


def iter_events(spec: EventSpec) -> tuple[EventData, Iterator[tuple[int, np.ndarray, np.ndarray]]]:
    """Labels at once; (index, audio, video) clip by clip."""
    rng = np.random.default_rng(spec.seed)
    fixed = np.random.default_rng(10_000 + spec.seed)
    dirs = {s: fixed.normal(0, 1, (7, st.dim)) for s, st in (("a", spec.audio), ("v", spec.video))}
    scale = {s: fixed.uniform(0.5, 3, st.dim) for s, st in (("a", spec.audio), ("v", spec.video))}
    offset = {s: fixed.normal(0, 2, st.dim) for s, st in (("a", spec.audio), ("v", spec.video))}
    n = spec.n_clips
    clean = rng.random((n, 7))
    labels = observe(clean, spec.label_noise, rng)
    partition = ["train"] * spec.n_train + ["devel"] * spec.n_devel + ["test"] * spec.n_test
    order = rng.permutation(n)  # partitions interleaved in id order, as in the challenge files
    partition = [partition[i] for i in order]
    ids = [f"{i + 1:05d}" for i in range(n)]

    def clips() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for i in range(n):
            duration = rng.uniform(*spec.duration_s)
            margin = np.array(spec.widths_s)
            centres = rng.uniform(margin, duration - margin)
            out = [_stream(rng, spec, st, s, dirs[s], clean[i], centres, duration, scale[s], offset[s])
                   for s, st in (("a", spec.audio), ("v", spec.video))]
            yield i, out[0], out[1]
    return EventData(ids, partition, labels, clean.astype(np.float32)), clips()


def generate_events(spec: EventSpec) -> EventData:
    data, clips = iter_events(spec)
    for _, a, v in clips:
        data.audio.append(a)
        data.video.append(v)
    return data


def bracketed(cid: str) -> str:
    return f"[{cid}]"


def write_feature_csv(path: Path, cid: str, x: np.ndarray, step_s: float, prefix: str) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["File_ID", "timestamp", *(f"{prefix}_{j}" for j in range(x.shape[1]))])
        for t, row in enumerate(x):
            w.writerow([bracketed(cid), f"{t * step_s:.3f}", *("%.6g" % v for v in row)])


def write_muse_layout(root: str | Path, spec: EventSpec, keep_arrays: bool = False) -> EventData:
    """The event data in the MuSe-Reaction layout (see `write_muse_files`)."""
    data, clips = iter_events(spec)
    streams = {"a": (spec.audio.name, spec.audio.step_s), "v": (spec.video.name, spec.video.step_s)}

    def arrays() -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        for i, a, v in clips:
            if keep_arrays:
                data.audio.append(a)
                data.video.append(v)
            yield data.ids[i], {"a": a, "v": v}
    write_muse_files(root, streams, arrays(), data.ids, data.partition, data.labels)
    return data


def write_muse_files(root: str | Path, streams: dict[str, tuple[str, float]],
                     arrays: Iterator[tuple[str, dict[str, np.ndarray]]], ids: list[str],
                     partition: list[str], labels: np.ndarray) -> None:
    """root/feats/<Feature>/<id>.csv (header File_ID,timestamp,<feature>_0,...; ids written
    "[00001]"), root/labels.csv (File_ID + the 7 emotions; train and devel clips only, as the
    challenge gives no test labels) and root/partition.csv (Id,Partition: train/devel/test).
    streams: key -> (feature name, frame step in s); arrays yields (id, {key: (T, D)})."""
    root = Path(root)
    folders = {k: root / "feats" / name for k, (name, _) in streams.items()}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for cid, per in arrays:
        for k, x in per.items():
            write_feature_csv(folders[k] / f"{cid}.csv", cid, x, streams[k][1], streams[k][0])
    with (root / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["File_ID", *EMOTION_COLUMNS])
        for cid, part, row in zip(ids, partition, labels):
            if part != "test":   # like the challenge: no test labels
                w.writerow([bracketed(cid), *(f"{float(v):.4f}" for v in row)])
    with (root / "partition.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["Id", "Partition"])
        for cid, part in zip(ids, partition):
            w.writerow([bracketed(cid), part])
