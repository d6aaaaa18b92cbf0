"""Muxing generated frames and speech into a real container with PyAV.

Codecs by extension: .mp4/.mov/.mkv/.ts → H.264 (libx264; mpeg4 when PyAV was built without
it) + AAC; .webm → VP8 + Opus; .avi → MPEG-4 Part 2 + PCM; .m4a → AAC only (no frames).
Further waves become further audio streams (a dubbed track, a second microphone).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

_CODECS = {".mp4": ("h264", "aac"), ".mov": ("h264", "aac"), ".mkv": ("h264", "aac"), ".ts": ("h264", "aac"),
           ".webm": ("libvpx", "libopus"), ".avi": ("mpeg4", "pcm_s16le"), ".m4a": (None, "aac")}


def _video_codec(suffix: str) -> str:
    import av

    name = _CODECS.get(suffix, _CODECS[".mp4"])[0] or "h264"
    if name == "h264":
        name = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    return name


def encode(path: Path, frames: list[np.ndarray] | None, times: np.ndarray, wave: np.ndarray | None, *, fps: float,
           audio_rate: int = 44100, start_time: float = 0.0, rotation: int = 0, vfr: bool = False,
           faststart: bool = False, extra_waves: tuple[np.ndarray, ...] = ()) -> None:
    """Write RGB `frames` shown at `times` (+ `start_time`) seconds, and mono `wave` (then each of
    `extra_waves` as a further audio stream), to `path`. frames=None writes audio only."""
    import av

    suffix = path.suffix.lower()
    acodec = _CODECS.get(suffix, _CODECS[".mp4"])[1]
    options = {"movflags": "+faststart"} if faststart and suffix in (".mp4", ".mov") else {}
    with av.open(str(path), "w", options=options) as container:
        video = None if frames is None else _video_stream(container, suffix, frames[0], fps, vfr, rotation)
        waves = [w for w in (wave, *extra_waves) if w is not None]
        audio = []
        for w in waves:
            rate = audio_rate
            if acodec == "libopus" and audio_rate != 48000:
                w, rate = _resample(w, audio_rate, 48000), 48000
            stream = container.add_stream(acodec, rate=rate)
            stream.layout = "mono"
            audio.append((stream, w, rate))
        if video is not None:
            time_base = video.codec_context.time_base
            for image, t in zip(frames, times, strict=True):
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = int(round((t + start_time) / time_base))
                frame.time_base = time_base
                container.mux(video.encode(frame))
            container.mux(video.encode())
        for stream, w, rate in audio:
            fmt = "s16" if acodec == "pcm_s16le" else "flt"
            samples = w[None, :] if fmt == "flt" else (np.clip(w, -1, 1) * 32767).astype(np.int16)[None, :]
            aframe = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format=fmt, layout="mono")
            aframe.sample_rate = rate
            aframe.pts = int(round(start_time * rate))
            aframe.time_base = Fraction(1, rate)
            container.mux(stream.encode(aframe))
            container.mux(stream.encode())


def _video_stream(container, suffix: str, first: np.ndarray, fps: float, vfr: bool, rotation: int):
    vcodec = _video_codec(suffix)
    rate = Fraction(fps).limit_denominator(10000)
    video = container.add_stream(vcodec, rate=rate)
    video.height, video.width = first.shape[:2]
    video.pix_fmt = "yuv420p"
    if vcodec == "libx264":
        video.options = {"preset": "veryfast", "crf": "23"}
    elif vcodec == "mpeg4":
        video.options = {"qscale": "4"}
    video.codec_context.time_base = Fraction(1, 1000) if vfr else 1 / rate
    if rotation % 360:
        video.set_display_rotation(rotation)
    return video


def _resample(wave: np.ndarray, src: int, dst: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = np.gcd(src, dst)
    return resample_poly(wave, dst // g, src // g).astype(np.float32)
