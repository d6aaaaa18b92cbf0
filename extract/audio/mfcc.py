"""`mfcc`: MFCCs as librosa.feature.mfcc computes them, with adjacent frames stacked.

Default (seed 000's setting): 128 coefficients from 128 Slaney mel bands (0–8 kHz) of the
power spectrum of 25 ms periodic-Hann frames every 10 ms, zero-padded to n_fft=1024 (with
512 the narrowest filters of a 128-band bank touch a single FFT bin; with 1024, at least 2);
centred frames with zero padding, 10·log10 power floored 80 dB below the clip's maximum,
orthonormal DCT-II. Then 8 adjacent frames are concatenated → 1024-d rows every 80 ms; an
incomplete tail group is dropped. Row g holds frames 8g … 8g+7 (frame-major); its time is
that of frame 8g, i.e. the centre of its first frame: g · hop · stack / sr.

Computed with torch (no numba JIT); the parameters are named as librosa's, and
tests/extract/test_mfcc.py checks equality with librosa.feature.mfcc.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from extract.audio.logmel import slaney_mel_matrix
from extract.audio.windows import SAMPLE_RATE, check_waves, frame_times, stack_frames
from extract.specs import BuildOptions, FeatureOutput, FeatureSpec, OutputShape


@dataclass(frozen=True)
class MfccConfig:
    n_mfcc: int = 128
    n_mels: int = 128
    n_fft: int = 1024
    win_length: int = 400
    hop_length: int = 160
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float | None = 80.0
    stack: int = 8  # adjacent frames concatenated per row

    def __post_init__(self) -> None:
        for name in ("n_mfcc", "n_mels", "n_fft", "win_length", "hop_length", "stack"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"mfcc: {name} must be a positive integer, got {value!r}")
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"mfcc: n_mfcc ({self.n_mfcc}) must not exceed n_mels ({self.n_mels})")
        if self.win_length > self.n_fft:
            raise ValueError(f"mfcc: win_length ({self.win_length}) must be in 1..n_fft ({self.n_fft})")

    @property
    def dim(self) -> int:
        return self.n_mfcc * self.stack

    @property
    def frame_step(self) -> float:
        return self.hop_length * self.stack / SAMPLE_RATE


def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """(n_mfcc, n_mels) orthonormal DCT-II basis (scipy.fft.dct(type=2, norm='ortho'))."""
    k = np.arange(n_mfcc)[:, None]
    n = np.arange(n_mels)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.astype(np.float32)


@dataclass
class MfccExtractor:
    config: MfccConfig
    device: str = "cpu"

    def __post_init__(self) -> None:
        import torch

        c = self.config
        self._window = torch.hann_window(c.win_length, periodic=True, device=self.device)
        fb = slaney_mel_matrix(c.n_mels, c.n_fft, SAMPLE_RATE, c.fmin, c.fmax)
        self._mel = torch.from_numpy(fb).to(self.device)
        self._dct = torch.from_numpy(dct_matrix(c.n_mfcc, c.n_mels)).to(self.device)
        self.dim, self.frame_step = c.dim, c.frame_step

    def coefficients(self, wave: np.ndarray) -> np.ndarray:
        """(n_frames, n_mfcc) float32 MFCCs of one clip, frames every hop_length samples (no stacking)."""
        import torch

        c = self.config
        with torch.inference_mode():
            x = torch.from_numpy(wave).to(self.device)
            spec = torch.stft(x, c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                              window=self._window, center=True, pad_mode="constant", return_complex=True)
            power = spec.real.square() + spec.imag.square()  # (freq, frames)
            db = 10.0 * torch.log10(torch.clamp(self._mel @ power, min=1e-10))
            if c.top_db is not None:
                db = torch.maximum(db, db.max() - float(c.top_db))
            return (self._dct @ db).T.contiguous().cpu().numpy()

    def run(self, waves: list[np.ndarray], sample_rate: int) -> list[FeatureOutput]:
        outputs = []
        for wave in check_waves(waves, sample_rate, "mfcc"):
            if wave.size == 0:
                data = np.zeros((0, self.dim), np.float32)
            else:
                data = stack_frames(self.coefficients(wave), self.config.stack)
            outputs.append(FeatureOutput(data=data, times=frame_times(len(data), self.frame_step)))
        return outputs


def build(options: BuildOptions) -> MfccExtractor:
    return MfccExtractor(config=SPEC.resolve_config(options.config), device=options.device)


def shape(config: MfccConfig, weights) -> OutputShape:
    return OutputShape((config.dim,), config.frame_step)


SPEC = FeatureSpec(
    name="mfcc",
    modality="audio",
    version="1",
    input="audio",
    build=build,
    shape=shape,
    config=MfccConfig,
    examples=({"n_mfcc": 40}, {"stack": 1, "hop_length": 320}),
    description="128 MFCCs (librosa definition, 25 ms / 10 ms, 128 mel bands), 8 adjacent frames "
                "concatenated → 1024-d every 80 ms; dim = n_mfcc × stack, step = hop_length × stack / 16 kHz",
)
