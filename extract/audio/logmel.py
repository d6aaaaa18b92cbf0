"""Numpy DSP shared by the VGGish and DeepSpectrum front ends.

Framing (no centring/padding), periodic Hann, HTK and Slaney mel
filterbanks, dB conversion, and VGGish's log-mel examples. Everything is plain
numpy so that no JIT (librosa/numba) sits in the extraction hot path; the
formulas follow the published definitions recorded in shared/reference.
"""
from __future__ import annotations

import numpy as np

# VGGish front end (vggish_params facts): 25 ms / 10 ms at 16 kHz, 64 HTK bands 125-7500 Hz.
VGGISH_SR = 16000
VGGISH_WIN = 400
VGGISH_HOP = 160
VGGISH_NFFT = 512
VGGISH_BANDS = 64
VGGISH_FMIN = 125.0
VGGISH_FMAX = 7500.0
VGGISH_LOG_OFFSET = 0.01
VGGISH_EXAMPLE_FRAMES = 96
VGGISH_EXAMPLE_SECONDS = VGGISH_EXAMPLE_FRAMES * VGGISH_HOP / VGGISH_SR  # 0.96
VGGISH_MIN_SAMPLES = VGGISH_WIN + (VGGISH_EXAMPLE_FRAMES - 1) * VGGISH_HOP  # 15600 = one example


def periodic_hann(n: int) -> np.ndarray:
    """Hann window of length n that is periodic (as for an n-point DFT): 0.5 - 0.5 cos(2πk/n)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def frame(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Strided view of the last axis as frames: (..., n) -> (..., 1 + (n - length) // hop, length).

    Incomplete tails are dropped; fewer than `length` samples give zero frames."""
    n = x.shape[-1]
    count = 1 + (n - length) // hop if n >= length else 0
    if count == 0:
        return np.zeros(x.shape[:-1] + (0, length), dtype=x.dtype)
    windows = np.lib.stride_tricks.sliding_window_view(x, length, axis=-1)
    return windows[..., ::hop, :][..., :count, :]


def hz_to_mel_htk(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def htk_mel_matrix(n_bands: int, n_bins: int, sample_rate: int, fmin: float, fmax: float,
                   zero_dc: bool = True) -> np.ndarray:
    """(n_bins, n_bands) triangles built in the HTK-mel domain, peak 1, no area normalisation.

    Bin centres are linspace(0, sr/2, n_bins); band edges are n_bands+2 points spaced evenly
    in mel between fmin and fmax. The DC bin's weights are zeroed (VGGish convention)."""
    bins_mel = hz_to_mel_htk(np.linspace(0.0, sample_rate / 2.0, n_bins))
    edges = np.linspace(hz_to_mel_htk(fmin), hz_to_mel_htk(fmax), n_bands + 2)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lo) / (mid - lo)
    falling = (hi - bins_mel[:, None]) / (hi - mid)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if zero_dc:
        weights[0, :] = 0.0
    return weights


def hz_to_mel_slaney(f: np.ndarray | float) -> np.ndarray:
    """Slaney's Auditory Toolbox mel scale: linear below 1 kHz (3 mel per 200 Hz), log above."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3.0)
    log_step = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / log_step, lin)


def mel_to_hz_slaney(m: np.ndarray | float) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(log_step * (m - 15.0)), m * (200.0 / 3.0))


def slaney_mel_frequencies(n: int, fmin: float, fmax: float) -> np.ndarray:
    """n frequencies (Hz) evenly spaced on the Slaney mel scale, both ends included."""
    return mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), n))


def slaney_mel_matrix(n_mels: int, n_fft: int, sample_rate: int, fmin: float = 0.0,
                      fmax: float | None = None) -> np.ndarray:
    """(n_mels, n_fft//2+1) Slaney-scale triangles with area ('slaney') normalisation, float32."""
    fmax = sample_rate / 2.0 if fmax is None else fmax
    bin_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    pts = slaney_mel_frequencies(n_mels + 2, fmin, fmax)
    gaps = np.diff(pts)
    offsets = pts[:, None] - bin_hz[None, :]
    rising = -offsets[:-2] / gaps[:-1, None]
    falling = offsets[2:] / gaps[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (pts[2:] - pts[:-2]))[:, None]
    return weights.astype(np.float32)


def power_to_db(power: np.ndarray, amin: float = 1e-10, axes: tuple[int, ...] = (-2, -1)) -> np.ndarray:
    """10·log10(max(amin, P)) relative to the maximum over `axes` (0 dB = that maximum), no top_db clip."""
    db = 10.0 * np.log10(np.maximum(amin, power))
    return db - 10.0 * np.log10(np.maximum(amin, power.max(axis=axes, keepdims=True)))


def vggish_log_mel(wave: np.ndarray, chunk_frames: int = 4096) -> np.ndarray:
    """16 kHz mono float wave -> (frames, 64) float64 VGGish log-mel (ln(mel(|X|) + 0.01)).

    Computed `chunk_frames` frames at a time so long clips do not need the whole spectrum in memory."""
    frames = frame(np.asarray(wave, dtype=np.float64), VGGISH_WIN, VGGISH_HOP)
    window, mel = periodic_hann(VGGISH_WIN), _vggish_mel()
    out = np.empty((len(frames), VGGISH_BANDS))
    for start in range(0, len(frames), chunk_frames):
        block = frames[start:start + chunk_frames] * window
        out[start:start + len(block)] = np.abs(np.fft.rfft(block, n=VGGISH_NFFT, axis=-1)) @ mel
    return np.log(out + VGGISH_LOG_OFFSET)


def vggish_examples(wave: np.ndarray, pad_short: bool = True) -> np.ndarray:
    """(N, 96, 64) float32 non-overlapping 0.96 s log-mel patches; example k starts at k·0.96 s.

    As upstream, an incomplete tail is dropped; with `pad_short`, a clip too short for even one
    example (but not empty) is zero-padded to one so that every non-empty clip gets a row."""
    wave = np.asarray(wave)
    if pad_short and 0 < wave.shape[-1] < VGGISH_MIN_SAMPLES:
        wave = np.pad(wave, (0, VGGISH_MIN_SAMPLES - wave.shape[-1]))
    logmel = vggish_log_mel(wave)
    n = len(logmel) // VGGISH_EXAMPLE_FRAMES
    return logmel[: n * VGGISH_EXAMPLE_FRAMES].reshape(n, VGGISH_EXAMPLE_FRAMES, VGGISH_BANDS).astype(np.float32)


_VGGISH_MEL: np.ndarray | None = None


def _vggish_mel() -> np.ndarray:
    global _VGGISH_MEL
    if _VGGISH_MEL is None:
        _VGGISH_MEL = htk_mel_matrix(VGGISH_BANDS, VGGISH_NFFT // 2 + 1, VGGISH_SR, VGGISH_FMIN, VGGISH_FMAX)
    return _VGGISH_MEL

