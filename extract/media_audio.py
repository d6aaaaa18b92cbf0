"""Audio decoding: a clip's audio → mono float32 at a target rate (16 kHz by default).

Source: the file's first audio stream (or the one `stream` names, counted among its audio
streams from 0; which one was used, and how many there were, is kept in `Audio`); if it has
none, a `.wav` beside it with the same stem; otherwise MediaError, or silence of the clip's
duration with missing="zeros". Packets are decoded one at a time: one the decoder rejects is
replaced by silence of its duration (timing stays aligned) and counted; the clip fails only
when more than half of its packets are rejected.
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
    stream: int = 0         # which audio stream (0 = the first), of `streams`
    streams: int = 1        # audio streams in the file
    corrupt_packets: int = 0  # rejected by the decoder, replaced by silence


def decode_audio(path: str | Path, sample_rate: int = 16000,
                 missing: Literal["error", "zeros"] = "error", stream: int = 0) -> Audio:
    """Mono float32 samples of `path`'s audio at `sample_rate`, from its `stream`-th audio stream."""
    if missing not in ("error", "zeros"):
        raise ValueError(f"missing must be 'error' or 'zeros', got {missing!r}")
    path = Path(path)
    with open_container(path) as container:
        if container.streams.audio:
            count = len(container.streams.audio)
            if not 0 <= stream < count:
                raise MediaError(f"{path}: audio stream {stream} asked for, the file has {count} "
                                 f"(numbered 0..{count - 1}; --audio-stream)")
            return _read_stream(path, container, sample_rate, "stream", stream)
        duration = _media_duration(container)
    sidecar = path.with_suffix(".wav")
    if sidecar != path and sidecar.is_file():
        log.debug("%s: no audio stream, using %s", path, sidecar)
        with open_container(sidecar) as container:
            if container.streams.audio:
                return _read_stream(sidecar, container, sample_rate, "sidecar", 0)
    if missing == "zeros":
        n = int(round(duration * sample_rate))
        return Audio(np.zeros(n, np.float32), sample_rate, n / sample_rate, source="zeros")
    raise MediaError(f"{path}: no audio stream (and no {sidecar.name} beside it)")


def _read_stream(path: Path, container, sample_rate: int, source: str, index: int) -> Audio:
    import av

    stream = container.streams.audio[index]
    stream.thread_type = "AUTO"
    if len(container.streams.audio) > 1:
        log.info("%s: %d audio streams; using #%d (%s, %s)", path, len(container.streams.audio), index,
                 stream.codec_context.name, (stream.metadata or {}).get("language", "no language tag"))
    resampler = av.AudioResampler(format="fltp", layout=None, rate=sample_rate)
    chunks: list[np.ndarray] = []
    decoded = rejected = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                rejected += 1
                seconds = float(packet.duration * packet.time_base) if packet.duration and packet.time_base else 0.0
                chunks.append(np.zeros((1, int(round(seconds * sample_rate))), np.float32))
                continue
            for frame in frames:
                decoded += 1
                chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray() for out in resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: corrupt or truncated audio data after {decoded} frames: {exc}") from exc
    except ValueError as exc:  # e.g. the channel layout changes mid-stream
        raise MediaError(f"{path}: cannot resample audio: {exc}") from exc
    if rejected > decoded:
        raise MediaError(f"{path}: corrupt audio: {rejected} packet(s) rejected, {decoded} frame(s) decoded")
    if not chunks or not decoded:
        raise MediaError(f"{path}: audio stream holds no samples")
    samples = np.concatenate([c.mean(axis=0) if c.shape[0] > 1 else c[0] for c in chunks]).astype(np.float32)
    got = len(samples) / sample_rate
    end = declared_end(stream)
    if end is not None:
        declared = end - float((stream.start_time or 0) * stream.time_base)
        if got < declared - max(0.5, 0.1 * declared):
            raise MediaError(f"{path}: truncated audio: data ends at {got:.2f} s of the declared {declared:.2f} s")
    return Audio(samples, sample_rate, len(samples) / sample_rate, source=source, stream=index,
                 streams=len(container.streams.audio), corrupt_packets=rejected)


def _media_duration(container) -> float:
    import av

    if container.streams.video:
        stream = container.streams.video[0]
        end = declared_end(stream)
        if end is not None:
            return end - float((stream.start_time or 0) * stream.time_base)
    return float(container.duration / av.time_base) if container.duration else 0.0
