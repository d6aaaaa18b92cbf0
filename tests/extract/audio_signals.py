"""Generated test audio for the audio-feature tests (no files needed)."""
from __future__ import annotations

import numpy as np

SR = 16000


def speechlike(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """float32 'speech': harmonics of a gliding f0 with a syllable-rate envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = 140 + 40 * np.sin(2 * np.pi * (0.5 + 0.1 * seed) * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t + seed)) ** 2
    return (0.1 * voiced * envelope + 0.005 * rng.standard_normal(t.size)).astype(np.float32)
