"""Synthetic ERI benchmark: two feature streams whose temporal patterns set the 7 labels.

Per clip, seven latent factors u0..u6 ~ U(0, 1) drive eight latent channels over the
clip's normalised time tau in [0, 1]:

  audio  a0 = u0 * sin(2pi 6 tau + phase)       amplitude of an oscillation (random phase)
         a1 = bump at tau = 0.15 + 0.7 u1        position of a burst
         a2 = u2 - 0.5                           a level
         a3 = smooth random distractor
  video  v0 = u3 * sin(2pi 4 tau + phase)
         v1 = (2 u4 - 1) (2 tau - 1)             slope of a ramp (mean zero)
         v2 = u5 - 0.5                           a level
         v3 = (u6 - 0.5) cos(2pi 3 tau)          amplitude of a fixed-phase wave

Labels (clean): adoration = u0 u3, amusement = u1, anxiety = |2 u4 - 1|,
disgust = u2 (1 - u5), empathic pain = u6, fear = (u0 + 1 - u1) / 2, surprise = max(u3, u5);
observed labels add N(0, label_noise) and are clipped to [0, 1]. The features are a
fixed random mixing of the channels into `audio_dim` / `video_dim` dimensions (plus a
per-dimension offset and scale) with N(0, feature_noise) added, at clip lengths drawn
from the given ranges. Mean-pooling erases most of this (amplitudes with random
phase, burst positions, slopes), so ridge regression on pooled features stays low
while a temporal model can approach the noise ceiling: the mean over emotions of
Pearson r between clean and observed labels (``noise_ceiling``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from feature_store import FeatureStore, fingerprint_of
from fusion.labels import write_labels
from fusion.metrics import pearson_columns

GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class SyntheticSpec:
    n_clips: int = 1200
    audio_dim: int = 24
    video_dim: int = 32
    audio_steps: tuple[int, int] = (48, 96)
    video_steps: tuple[int, int] = (24, 48)
    audio_step_s: float = 0.04
    video_step_s: float = 0.2
    feature_noise: float = 0.3
    label_noise: float = 0.1
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    audio_name: str = "synth_audio"
    video_name: str = "synth_video"


def clean_labels(u: np.ndarray) -> np.ndarray:
    return np.stack([u[:, 0] * u[:, 3], u[:, 1], np.abs(2 * u[:, 4] - 1), u[:, 2] * (1 - u[:, 5]),
                     u[:, 6], (u[:, 0] + 1 - u[:, 1]) / 2, np.maximum(u[:, 3], u[:, 5])], axis=1)


def noisy(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(clean + rng.normal(0.0, sigma, clean.shape), 0.0, 1.0).astype(np.float32)


def noise_ceiling(label_noise: float, n: int = 200_000, seed: int = 12345) -> float:
    """Mean Pearson r between clean and observed labels (what a perfect model scores)."""
    rng = np.random.default_rng(seed)
    clean = clean_labels(rng.random((n, 7)))
    return float(np.mean(pearson_columns(clean, noisy(clean, label_noise, rng))))


def _channels(tau: np.ndarray, u: np.ndarray, phase: float, rng: np.random.Generator,
              audio: bool) -> np.ndarray:
    if audio:
        distractor = np.interp(tau, np.linspace(0, 1, 6), rng.normal(0, 0.5, 6))
        return np.stack([u[0] * np.sin(2 * np.pi * 6 * tau + phase),
                         np.exp(-((tau - (0.15 + 0.7 * u[1])) / 0.06) ** 2),
                         np.full_like(tau, u[2] - 0.5), distractor], axis=1)
    return np.stack([u[3] * np.sin(2 * np.pi * 4 * tau + phase),
                     (2 * u[4] - 1) * (2 * tau - 1),
                     np.full_like(tau, u[5] - 0.5),
                     (u[6] - 0.5) * np.cos(2 * np.pi * 3 * tau)], axis=1)


@dataclass
class SyntheticData:
    ids: list[str]
    audio: list[np.ndarray]          # empty when generated with keep_arrays=False
    video: list[np.ndarray]
    labels: np.ndarray
    clean: np.ndarray
    split: list[str]


def iter_synthetic(spec: SyntheticSpec) -> tuple[SyntheticData, Iterator[tuple[int, np.ndarray, np.ndarray]]]:
    """Labels at once, feature arrays clip by clip (index, audio, video): 16,000 clips at
    dims 1024/768 need not be in memory twice."""
    rng = np.random.default_rng(spec.seed)
    mix = np.random.default_rng(1000 + spec.seed)   # the mixing does not depend on n_clips
    mix_a, mix_v = mix.normal(0, 1, (4, spec.audio_dim)), mix.normal(0, 1, (4, spec.video_dim))
    off_a, off_v = mix.normal(0, 2, spec.audio_dim), mix.normal(0, 2, spec.video_dim)
    scale_a, scale_v = mix.uniform(0.5, 3, spec.audio_dim), mix.uniform(0.5, 3, spec.video_dim)
    u = rng.random((spec.n_clips, 7))
    clean = clean_labels(u)
    labels = noisy(clean, spec.label_noise, rng)
    n_train = int(round(spec.split[0] * spec.n_clips))
    n_val = int(round(spec.split[1] * spec.n_clips))
    split = ["train"] * n_train + ["val"] * n_val + ["test"] * (spec.n_clips - n_train - n_val)
    ids = [f"{i:05d}" for i in range(spec.n_clips)]

    def clips() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for i in range(spec.n_clips):
            pair = []
            for steps, mixing, off, scale, is_audio in (
                    (spec.audio_steps, mix_a, off_a, scale_a, True),
                    (spec.video_steps, mix_v, off_v, scale_v, False)):
                length = int(rng.integers(steps[0], steps[1] + 1))
                tau = np.linspace(0.0, 1.0, length)
                ch = _channels(tau, u[i], rng.uniform(0, 2 * np.pi), rng, is_audio)
                x = ch @ mixing + rng.normal(0, spec.feature_noise, (length, mixing.shape[1]))
                pair.append((x * scale + off).astype(np.float32))
            yield i, pair[0], pair[1]
    return SyntheticData(ids, [], [], labels, clean.astype(np.float32), split), clips()


def generate(spec: SyntheticSpec) -> SyntheticData:
    data, clips = iter_synthetic(spec)
    for _, a, v in clips:
        data.audio.append(a)
        data.video.append(v)
    return data


def write_synthetic(store_root: str | Path, labels_path: str | Path, spec: SyntheticSpec,
                    shard_size: int = 1000, keep_arrays: bool = True) -> tuple[SyntheticData, list[str]]:
    """Generate, write both streams to the store and the labels CSV; returns the data
    (feature arrays only with keep_arrays) and the store references (name@fingerprint)."""
    data, clips = iter_synthetic(spec)
    store = FeatureStore(store_root)
    dirs = []
    for name, modality, dim, step in ((spec.audio_name, "audio", spec.audio_dim, spec.audio_step_s),
                                      (spec.video_name, "video", spec.video_dim, spec.video_step_s)):
        fspec = {"name": name, "modality": modality, "dim": dim, "dtype": "float32",
                 "frame_step": step, "generator": "fusion.synthetic",
                 "version": GENERATOR_VERSION, "config": asdict(spec)}
        dirs.append((store.feature_dir(name, fingerprint_of(fspec), spec=fspec), step))
    done = [fd.completed() for fd, _ in dirs]
    pending = iter(clips)
    exhausted = False
    while not exhausted:
        with dirs[0][0].open_shard() as wa, dirs[1][0].open_shard() as wv:
            for _ in range(shard_size):
                item = next(pending, None)
                if item is None:
                    exhausted = True
                    break
                i, a, v = item
                cid = data.ids[i]
                for w, x, (_, step), have in ((wa, a, dirs[0], done[0]), (wv, v, dirs[1], done[1])):
                    if cid not in have:
                        w.add(cid, x, np.arange(len(x)) * step, attrs={"synthetic": 1})
                if keep_arrays:
                    data.audio.append(a)
                    data.video.append(v)
    write_labels(labels_path, data.ids, data.labels, data.split)
    return data, [f"{fd.feature}@{fd.fingerprint}" for fd, _ in dirs]
