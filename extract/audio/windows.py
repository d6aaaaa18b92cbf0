"""Small helpers shared by the audio extractors: input checks, framing and time vectors.

Conventions (mfcc, egemaps, wav2vec2): a row's time is the start, in seconds, of the audio
span it summarises (for centred STFT frames: the centre of its first frame). Windows are
whole: a clip too short for one gives 0 rows unless an extractor says otherwise.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000  # what extract.media.decode_audio delivers and every audio spec assumes


def check_waves(waves: list[np.ndarray], sample_rate: int, feature: str,
                expected_rate: int = SAMPLE_RATE) -> list[np.ndarray]:
    """Validate a batch of mono clips; returns contiguous float32 1-D arrays.

    Raises ValueError naming the feature and the offending clip index.
    """
    if int(sample_rate) != expected_rate:
        raise ValueError(f"{feature}: sample rate {sample_rate} Hz given, {expected_rate} Hz expected "
                         f"(decode audio with extract.media.decode_audio(path, sample_rate={expected_rate}))")
    out = []
    for i, wave in enumerate(waves):
        w = np.asarray(wave)
        if w.ndim != 1:
            raise ValueError(f"{feature}: clip {i} has shape {w.shape}; mono 1-D samples expected")
        w = np.ascontiguousarray(w, dtype=np.float32)
        if not np.isfinite(w).all():
            raise ValueError(f"{feature}: clip {i} contains NaN or infinite samples")
        out.append(w)
    return out


def frame_times(count: int, step_seconds: float, offset: float = 0.0) -> np.ndarray:
    """float64 (count,) times offset + i * step (computed by multiplication, no drift)."""
    return offset + np.arange(count, dtype=np.float64) * float(step_seconds)


def stack_frames(frames: np.ndarray, stack: int) -> np.ndarray:
    """(T, d) → (T // stack, stack * d): row g = concat(frames[g*stack], …, frames[g*stack + stack − 1]).

    An incomplete tail group is dropped.
    """
    groups = frames.shape[0] // stack
    return np.ascontiguousarray(frames[:groups * stack].reshape(groups, stack * frames.shape[1]))


def conv_output_length(n_samples: int, kernels: list[int], strides: list[int]) -> int:
    """Output length of a stack of unpadded 1-D convolutions: L = (L − k) // s + 1 per layer, ≥ 0."""
    length = n_samples
    for k, s in zip(kernels, strides):
        if length < k:
            return 0
        length = (length - k) // s + 1
    return length


def receptive_field(kernels: list[int], strides: list[int]) -> tuple[int, int]:
    """(receptive field in samples, total stride) of a stack of unpadded convolutions."""
    field, hop = 1, 1
    for k, s in zip(kernels, strides):
        field += (k - 1) * hop
        hop *= s
    return field, hop
