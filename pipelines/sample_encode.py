"""Muxing generated frames and speech into a real container with PyAV.

Codecs by extension: .mp4/.mov/.mkv → H.264 (libx264; mpeg4 when PyAV was built without
it) + AAC; .webm → VP8 + Opus; .avi → MPEG-4 Part 2 + PCM.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

_CODECS = {".mp4": ("h264", "aac"), ".mov": ("h264", "aac"), ".mkv": ("h264", "aac"),
           ".webm": ("libvpx", "libopus"), ".avi": ("mpeg4", "pcm_s16le")}


def _video_codec(suffix: str) -> str:
    import av

    name = _CODECS.get(suffix, _CODECS[".mp4"])[0]
    if name == "h264":
        name = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    return name


def encode(path: Path, frames: list[np.ndarray], times: np.ndarray, wave: np.ndarray | None, *, fps: float,
           audio_rate: int = 44100, start_time: float = 0.0, rotation: int = 0, vfr: bool = False,
           faststart: bool = False) -> None:
    """Write RGB `frames` shown at `times` (+ `start_time`) seconds, and mono `wave`, to `path`."""
    import av

    suffix = path.suffix.lower()
    vcodec = _video_codec(suffix)
    acodec = _CODECS.get(suffix, _CODECS[".mp4"])[1]
    rate = Fraction(fps).limit_denominator(10000)
    options = {"movflags": "+faststart"} if faststart and suffix in (".mp4", ".mov") else {}
    with av.open(str(path), "w", options=options) as container:
        video = container.add_stream(vcodec, rate=rate)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        if vcodec == "libx264":
            video.options = {"preset": "veryfast", "crf": "23"}
        elif vcodec == "mpeg4":
            video.options = {"qscale": "4"}
        time_base = Fraction(1, 1000) if vfr else 1 / rate
        video.codec_context.time_base = time_base
        if rotation % 360:
            video.set_display_rotation(rotation)
        audio = None
        if wave is not None:
            if acodec == "libopus" and audio_rate != 48000:
                wave, audio_rate = _resample(wave, audio_rate, 48000), 48000
            audio = container.add_stream(acodec, rate=audio_rate)
            audio.layout = "mono"
        for image, t in zip(frames, times, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = int(round((t + start_time) / time_base))
            frame.time_base = time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            fmt = "s16" if acodec == "pcm_s16le" else "flt"
            samples = wave[None, :] if fmt == "flt" else (np.clip(wave, -1, 1) * 32767).astype(np.int16)[None, :]
            aframe = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format=fmt, layout="mono")
            aframe.sample_rate = audio_rate
            aframe.pts = int(round(start_time * audio_rate))
            aframe.time_base = Fraction(1, audio_rate)
            container.mux(audio.encode(aframe))
            container.mux(audio.encode())


def _resample(wave: np.ndarray, src: int, dst: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = np.gcd(src, dst)
    return resample_poly(wave, dst // g, src // g).astype(np.float32)
