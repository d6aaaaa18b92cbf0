"""DeepSpectrum's spectrogram images, rendered with numpy instead of matplotlib.

DeepSpectrum 0.6.9 plots each audio window with librosa's `specshow` (a pcolormesh of
cells whose edges are the frame times and the bin frequencies) into a 1-inch figure
saved at 227 dpi. This module reproduces those images pixel-exactly
(shared/reference/deepspectrum_*_w0.png) for a batch of windows at once:

* dB matrix: |STFT|² (n_fft 512, hop 256, periodic Hann, no centring), optionally through
  128 Slaney mel bands (area-normalised, fmax 8 kHz), in dB relative to the window maximum.
* colour: index floor(256·(Z−min)/(max−min)) (255 at the maximum) into the viridis table,
  evaluated in float32 as matplotlib does.
* geometry: each pixel shows the last-drawn cell overlapping it, i.e. the cell under the
  pixel's right/top edge. The mel image's y axis is matplotlib's symlog (base 2,
  linthresh 1000 Hz), so 0–1 kHz fills the bottom 40 % — not a uniform mel axis.
Images depend only on (mode, samples per window, sample rate), so the pixel→cell lookup
is computed once per geometry and cached.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from extract.audio.logmel import frame, periodic_hann, power_to_db, slaney_mel_frequencies, slaney_mel_matrix
from extract.audio.viridis import VIRIDIS_LUT

Mode = Literal["mel", "spectrogram"]
MODES: tuple[str, ...] = ("mel", "spectrogram")
N_FFT = 512
HOP = 256
N_MELS = 128
IMAGE_SIZE = 227
_EPS_PX = 1e-6  # a hair inside the pixel edge, so an edge exactly on a cell boundary picks the lower cell


def check_mode(mode: str) -> Mode:
    aliases = {"linear": "spectrogram", "spec": "spectrogram"}
    mode = aliases.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"deepspectrum: unknown mode {mode!r}; use 'mel' or 'spectrogram' (alias 'linear')")
    return mode  # type: ignore[return-value]


def spectrogram_db(windows: np.ndarray, sample_rate: int, mode: Mode = "mel") -> np.ndarray:
    """(B, n) float windows -> (B, F, T) float32 dB, rows low→high frequency, 0 dB = each window's max.

    F = 128 (mel) or 257 (spectrogram); T = 1 + (n − 512) // 256."""
    windows = np.atleast_2d(np.asarray(windows, dtype=np.float64))
    frames = frame(windows, N_FFT, HOP) * periodic_hann(N_FFT)
    spec = np.fft.rfft(frames, n=N_FFT, axis=-1)
    power = spec.real ** 2 + spec.imag ** 2  # (B, T, 257)
    if check_mode(mode) == "mel":  # one (B·T, 257) @ (257, 128) product: far faster than a broadcast matmul
        power = (power.reshape(-1, power.shape[-1]) @ _mel_basis(sample_rate).T).reshape(power.shape[:-1] + (-1,))
    db = power_to_db(power, amin=1e-10)
    return np.ascontiguousarray(np.swapaxes(db, -1, -2), dtype=np.float32)


def colour_index(db: np.ndarray) -> np.ndarray:
    """(B, F, T) dB -> uint8 colormap indices with per-window autoscaling (matplotlib's float32 maths)."""
    z = np.asarray(db, dtype=np.float32)
    lo = z.min(axis=(-2, -1), keepdims=True)
    span = z.max(axis=(-2, -1), keepdims=True) - lo
    flat = span == 0
    scaled = (z - lo) / np.where(flat, np.float32(1), span)  # a constant window maps to index 0
    scaled *= np.float32(256)
    return np.clip(scaled, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Geometry:
    """Which cell each pixel shows: rows[r] is the frequency row for pixel row r (0 = top),
    cols[c] the frame for pixel column c."""

    rows: np.ndarray
    cols: np.ndarray


@lru_cache(maxsize=16)
def geometry(mode: Mode, n_samples: int, sample_rate: int, size: int = IMAGE_SIZE) -> Geometry:
    n_frames = 1 + (n_samples - N_FFT) // HOP
    if n_frames < 1:
        raise ValueError(f"deepspectrum: a window needs at least {N_FFT} samples, got {n_samples}")
    nyquist = sample_rate / 2.0
    t_edges = np.arange(n_frames + 1) * HOP / sample_rate
    x = (np.arange(1, size + 1) - _EPS_PX) / size * t_edges[-1]
    cols = np.searchsorted(t_edges, x, side="right") - 1
    if check_mode(mode) == "mel":
        centres = slaney_mel_frequencies(N_MELS, 0.0, nyquist)
        centres[1:] -= 0.5 * np.diff(centres)
        f_edges = np.append(np.maximum(0.0, centres), nyquist)
        scale = _symlog2
    else:
        bins = np.linspace(0.0, nyquist, N_FFT // 2 + 1)
        f_edges = np.append(np.maximum(0.0, bins - 0.5 * (bins[1] - bins[0])), nyquist)
        scale = _identity
    y_edges = scale(f_edges)
    y = y_edges[0] + (size - np.arange(size) - _EPS_PX) / size * (y_edges[-1] - y_edges[0])
    rows = np.searchsorted(y_edges, y, side="right") - 1
    n_rows = len(f_edges) - 1
    return Geometry(rows=np.clip(rows, 0, n_rows - 1), cols=np.clip(cols, 0, n_frames - 1))


def render(db: np.ndarray, geom: Geometry) -> np.ndarray:
    """(B, F, T) dB matrices -> (B, size, size, 3) uint8 RGB images."""
    cells = VIRIDIS_LUT[colour_index(db)]  # colour the (few) cells first, then expand them to pixels
    return cells.take(geom.rows, axis=1).take(geom.cols, axis=2)


def render_windows(windows: np.ndarray, sample_rate: int, mode: Mode = "mel") -> np.ndarray:
    """(B, n) audio windows -> (B, 227, 227, 3) uint8 DeepSpectrum images."""
    windows = np.atleast_2d(windows)
    mode = check_mode(mode)
    db = spectrogram_db(windows, sample_rate, mode)
    return render(db, geometry(mode, windows.shape[-1], sample_rate))


def _symlog2(f: np.ndarray, linthresh: float = 1000.0) -> np.ndarray:
    """matplotlib symlog (base 2, linscale 1) on non-negative values: 2f below linthresh,
    linthresh·(2 + log2(f/linthresh)) above."""
    f = np.asarray(f, dtype=np.float64)
    return np.where(f <= linthresh, 2.0 * f, linthresh * (2.0 + np.log2(np.maximum(f, linthresh) / linthresh)))


def _identity(f: np.ndarray) -> np.ndarray:
    return np.asarray(f, dtype=np.float64)


@lru_cache(maxsize=4)
def _mel_basis(sample_rate: int) -> np.ndarray:
    return slaney_mel_matrix(N_MELS, N_FFT, sample_rate, 0.0, sample_rate / 2.0).astype(np.float64)
