"""Audio decoding: a clip's audio → mono float32 at a target rate (16 kHz by default).

Source: the file's first audio stream; if it has none, a `.wav` beside it with the same
stem; otherwise MediaError, or silence of the clip's duration with missing="zeros".
Resampling goes through libswresample (PyAV's AudioResampler); channels are averaged
after resampling (swr's own stereo→mono matrix adds +3 dB, which we do not want).
Samples start at the audio stream's first sample (its start offset is not padded).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from extract.media_io import MediaError, declared_end, open_container

log = logging.getLogger(__name__)


@dataclass
class Audio:
    samples: np.ndarray   # float32 (n,) mono, nominally in [-1, 1]
    sample_rate: int
    duration: float       # seconds = n / sample_rate
    source: str = "stream"  # "stream" | "sidecar" (a .wav beside the video) | "zeros" (missing="zeros")


def decode_audio(path: str | Path, sample_rate: int = 16000,
                 missing: Literal["error", "zeros"] = "error") -> Audio:
    """Mono float32 samples of `path`'s audio at `sample_rate`."""
    if missing not in ("error", "zeros"):
        raise ValueError(f"missing must be 'error' or 'zeros', got {missing!r}")
    path = Path(path)
    with open_container(path) as container:
        if container.streams.audio:
            return _read_stream(path, container, sample_rate, source="stream")
        duration = _media_duration(container)
    sidecar = path.with_suffix(".wav")
    if sidecar != path and sidecar.is_file():
        log.debug("%s: no audio stream, using %s", path, sidecar)
        with open_container(sidecar) as container:
            if container.streams.audio:
                return _read_stream(sidecar, container, sample_rate, source="sidecar")
    if missing == "zeros":
        n = int(round(duration * sample_rate))
        return Audio(np.zeros(n, np.float32), sample_rate, n / sample_rate, source="zeros")
    raise MediaError(f"{path}: no audio stream (and no {sidecar.name} beside it)")


def _read_stream(path: Path, container, sample_rate: int, source: str) -> Audio:
    import av

    stream = container.streams.audio[0]
    stream.thread_type = "AUTO"
    resampler = av.AudioResampler(format="fltp", layout=None, rate=sample_rate)
    chunks: list[np.ndarray] = []
    decoded = 0
    try:
        for frame in container.decode(stream):
            decoded += 1
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: corrupt or truncated audio data after {decoded} frames: {exc}") from exc
    except ValueError as exc:  # e.g. the channel layout changes mid-stream
        raise MediaError(f"{path}: cannot resample audio: {exc}") from exc
    if not chunks:
        raise MediaError(f"{path}: audio stream holds no samples")
    samples = np.concatenate(chunks, axis=1).mean(axis=0).astype(np.float32)
    got = len(samples) / sample_rate
    end = declared_end(stream)
    if end is not None:
        declared = end - float((stream.start_time or 0) * stream.time_base)
        if got < declared - max(0.5, 0.1 * declared):
            raise MediaError(f"{path}: truncated audio: data ends at {got:.2f} s of the declared {declared:.2f} s")
    return Audio(samples, sample_rate, len(samples) / sample_rate, source=source)


def _media_duration(container) -> float:
    import av

    if container.streams.video:
        stream = container.streams.video[0]
        end = declared_end(stream)
        if end is not None:
            return end - float((stream.start_time or 0) * stream.time_base)
    return float(container.duration / av.time_base) if container.duration else 0.0
