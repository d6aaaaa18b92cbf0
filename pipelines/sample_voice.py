"""Speech-like audio for generated test clips.

`speech()` uses espeak-ng when it is installed (a real synthetic voice), else a
deterministic source-filter voice: a glottal pulse train with a moving pitch contour,
shaped into vowels by formant resonators, with consonant noise bursts, a syllable
envelope and pauses between phrases. Either way nothing needs downloading.
"""
from __future__ import annotations

import io
import logging
import shutil
import subprocess
import wave

import numpy as np

log = logging.getLogger(__name__)

# (F1, F2, F3) Hz of a few vowels (adult averages)
VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480],
                   [570, 840, 2410], [660, 1720, 2410]], np.float64)
BANDWIDTHS = np.array([90.0, 110.0, 170.0])
SENTENCES = (
    "I did not expect that at all, it is really something.",
    "Oh look at this, they are trying it again and again.",
    "Well that was quite a surprise for everyone here.",
    "Now wait a moment, what is going to happen next.",
)


def speech(duration: float, sample_rate: int, *, f0: float = 150.0, syllable_rate: float = 4.5,
           loudness: float = 0.5, seed: int = 0, voice: str = "auto") -> np.ndarray:
    """float32 mono samples, exactly round(duration * sample_rate) long, peak = loudness.

    voice: "auto" (espeak-ng if on PATH, else "synth"), "espeak" or "synth".
    """
    n = int(round(duration * sample_rate))
    x = None
    if voice in ("auto", "espeak") and shutil.which("espeak-ng"):
        x = _espeak(SENTENCES[seed % len(SENTENCES)], sample_rate, f0, syllable_rate)
    elif voice == "espeak":
        raise RuntimeError("voice='espeak' asked for but espeak-ng is not installed")
    if x is None:
        x = _synth(n, sample_rate, f0, syllable_rate, np.random.default_rng(seed))
    x = _fit(x, n, sample_rate)
    peak = float(np.abs(x).max()) or 1.0
    return (x * (loudness / peak)).astype(np.float32)


def _fit(x: np.ndarray, n: int, sample_rate: int) -> np.ndarray:
    """Trim or zero-pad to n samples (a short fade where trimmed), plus a faint noise floor."""
    lead = min(int(0.1 * sample_rate), n // 10)
    out = np.zeros(n, np.float64)
    part = x[: n - lead]
    out[lead: lead + len(part)] = part
    if len(x) > n - lead:
        fade = min(len(part), int(0.05 * sample_rate))
        out[lead + len(part) - fade: lead + len(part)] *= np.linspace(1, 0, fade)
    floor = np.random.default_rng(n).normal(0, 1e-3 * (np.abs(out).max() or 1.0), n)
    return out + floor


def _espeak(text: str, sample_rate: int, f0: float, syllable_rate: float) -> np.ndarray | None:
    from scipy.signal import resample_poly

    pitch = int(np.clip((f0 - 80) / 2, 0, 99))        # espeak's 0..99 pitch scale
    wpm = int(np.clip(syllable_rate * 40, 80, 400))    # ~1.5 syllables per word
    try:
        wav = subprocess.run(["espeak-ng", "-v", "en", "-p", str(pitch), "-s", str(wpm), "--stdout", text],
                             capture_output=True, check=True, timeout=30).stdout
        with wave.open(io.BytesIO(wav)) as w:
            rate, raw = w.getframerate(), w.readframes(w.getnframes())
    except (OSError, subprocess.SubprocessError, wave.Error, EOFError) as exc:
        log.warning("espeak-ng failed (%s); using the generated voice", exc)
        return None
    x = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    g = np.gcd(sample_rate, rate)
    return resample_poly(x, sample_rate // g, rate // g)


def _resonate(x: np.ndarray, freqs: np.ndarray, sample_rate: int) -> np.ndarray:
    from scipy.signal import lfilter

    for f, bw in zip(freqs, BANDWIDTHS, strict=True):
        r = np.exp(-np.pi * bw / sample_rate)
        a = [1.0, -2 * r * np.cos(2 * np.pi * f / sample_rate), r * r]
        x = lfilter([sum(a)], a, x)  # unit gain at DC
    return x


def _synth(n: int, sample_rate: int, f0: float, syllable_rate: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, lfilter, sosfilt

    t = np.arange(n) / sample_rate
    # pitch: slow intonation wave, declination per phrase and small jitter
    contour = f0 * (1 + 0.12 * np.sin(2 * np.pi * 0.6 * t + rng.uniform(0, 6.3))) * (1 - 0.05 * (t % 1.7))
    contour *= 1 + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(np.arange(1, n + 1))
    phase = np.cumsum(contour / sample_rate)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    b, a = [1.0], [1.0, -2 * 0.96, 0.96 ** 2]     # glottal roll-off (−12 dB/oct) ...
    source = np.diff(lfilter(b, a, pulses), prepend=0.0)  # ... and lip radiation (+6 dB/oct)
    source += 0.02 * rng.standard_normal(n)            # breath
    noise_hp = butter(4, 2500, "highpass", fs=sample_rate, output="sos")
    out = np.zeros(n)
    pos, in_phrase, phrase_len = 0.0, 0, rng.integers(3, 7)
    while pos < n / sample_rate - 0.15:
        syl = rng.uniform(0.7, 1.3) / syllable_rate
        i0, i1 = int(pos * sample_rate), min(n, int((pos + syl) * sample_rate))
        tail = min(n, i1 + int(0.03 * sample_rate))
        m = i1 - i0
        cons = int(rng.uniform(0.15, 0.3) * m) if rng.random() < 0.6 else 0
        env = np.zeros(tail - i0)
        attack, release = max(1, int(0.02 * sample_rate)), max(1, int(0.05 * sample_rate))
        v = slice(cons, m)
        env[v] = np.minimum(1.0, np.minimum(np.arange(m - cons) / attack, np.arange(m - cons)[::-1] / release))
        formants = VOWELS[rng.integers(len(VOWELS))] * rng.uniform(0.92, 1.08, 3)
        out[i0:tail] += _resonate(source[i0:tail] * env, formants, sample_rate)
        if cons:
            burst = sosfilt(noise_hp, rng.standard_normal(cons)) * np.hanning(cons)
            out[i0:i0 + cons] += 0.3 * burst * np.abs(out[i0:tail]).max(initial=1.0)
        pos += syl
        in_phrase += 1
        if in_phrase >= phrase_len:
            pos += rng.uniform(0.12, 0.3)
            in_phrase, phrase_len = 0, rng.integers(3, 7)
    return out
