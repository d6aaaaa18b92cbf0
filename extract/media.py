"""Decoding media with PyAV: sampled RGB video frames, 16 kHz mono audio, probing.

Frame times come from the stream's pts × time_base, relative to the video stream's
start (so variable frame rate and non-zero start times are handled; `Frames.start_time`
keeps the offset for anyone who needs container time). Rotation side data (display
matrix) is applied to the returned images. Every frame must be decoded (inter-frame
codecs), but only the selected ones are converted to RGB: the timeline is read from the
packets first, the selection is made on pts, then the decode pass converts only those.

Damage: packets are decoded one at a time, so a corrupt packet costs only the frames the
decoder cannot make from it (the clip is not given up). Selected frames that could not be
decoded are left out (their times with them) and counted in `Frames.lost`; the clip fails
only when fewer than MIN_DECODED_FRACTION of the selected frames decoded.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from extract.media_io import MediaError, declared_end, open_container, read_timeline
from extract.media_audio import Audio, decode_audio

__all__ = ["Sampling", "Frames", "Audio", "MediaInfo", "MediaError", "decode_frames", "decode_frames_multi",
           "decode_audio", "probe"]

log = logging.getLogger(__name__)
MIN_DECODED_FRACTION = 0.5  # a damaged clip is kept when at least this share of its selected frames decoded


@dataclass(frozen=True)
class Sampling:
    """Which frames to keep; exactly one of the three is set.

    fps:    one frame per 1/fps-second interval (the first frame in each interval; no
            duplicates when the clip's rate is lower).
    frames: exactly this many frames spread uniformly in time (segment centres; frames
            repeat if the clip has fewer).
    every:  every n-th frame in presentation order, starting with the first.
    """

    fps: float | None = None
    frames: int | None = None
    every: int | None = None

    def __post_init__(self) -> None:
        chosen = [v for v in (self.fps, self.frames, self.every) if v is not None]
        if len(chosen) != 1:
            raise ValueError("Sampling: set exactly one of fps, frames, every")
        if chosen[0] <= 0:
            raise ValueError(f"Sampling: value must be positive, got {self}")

    def describe(self) -> dict:
        """Canonical dict for fingerprints."""
        return {k: v for k, v in (("fps", self.fps), ("frames", self.frames), ("every", self.every))
                if v is not None}

    def select(self, times: np.ndarray, duration: float) -> np.ndarray:
        """Indices into `times` (sorted seconds from the stream start) of the frames to keep."""
        n = len(times)
        if n == 0:
            return np.zeros(0, np.int64)
        if self.every is not None:
            return np.arange(0, n, self.every, dtype=np.int64)
        if self.fps is not None:
            bins = np.floor(times * self.fps + 1e-6).astype(np.int64)
            _, first = np.unique(bins, return_index=True)
            return np.sort(first).astype(np.int64)
        # frame whose display interval [t_k, t_k+1) holds each segment centre
        targets = (np.arange(self.frames) + 0.5) * (duration / self.frames)
        idx = np.searchsorted(times, targets, side="right") - 1
        return np.clip(idx, 0, n - 1).astype(np.int64)


@dataclass
class Frames:
    images: np.ndarray      # uint8 (N, H, W, 3) RGB, display orientation
    times: np.ndarray       # float64 (N,) seconds from the video stream's start
    duration: float         # seconds covered by the video stream
    fps: float              # average frame rate of the source
    path: str = ""
    start_time: float = 0.0  # the stream's start in container time (seconds)
    rotation: int = 0        # degrees (counter-clockwise) applied to the decoded pictures
    lost: int = 0            # selected frames that could not be decoded (corrupt data), left out
    corrupt_packets: int = 0  # packets the decoder rejected

    def damage_note(self) -> str:
        """'' for a clean decode, else one line for the clip's record."""
        if not (self.lost or self.corrupt_packets):
            return ""
        selected = len(self.times) + self.lost
        return (f"{self.lost} of {selected} selected frame(s) lost to {self.corrupt_packets} corrupt "
                f"packet(s); the rest decoded")


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0            # display size (after rotation)
    height: int = 0
    fps: float = 0.0
    n_frames: int = 0         # from the container header (0 = unknown)
    rotation: int = 0
    start_time: float = 0.0
    video_codec: str = ""
    audio_codec: str = ""
    audio_sample_rate: int = 0
    audio_channels: int = 0


def _to_rgb(frame, reformatter=None) -> np.ndarray:
    """The one place frames become RGB arrays (tests count calls to prove sparsity). Pass one
    VideoReformatter per decode: it keeps its swscale context (frame.to_ndarray(format=...) builds
    a new one for every frame, ~10× slower at 640×480); the pixels are the same."""
    if reformatter is None:
        return frame.to_ndarray(format="rgb24")
    return reformatter.reformat(frame, format="rgb24").to_ndarray()


def _rotate(image: np.ndarray, degrees: int) -> np.ndarray:
    k = (degrees // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=k)) if k else image


def _rotation_of(frame) -> int:
    try:
        deg = int(round(frame.rotation or 0))
    except Exception:  # no side data / unsupported build
        return 0
    if deg % 90:
        log.warning("rotation of %d degrees is not a multiple of 90; ignored", deg)
        return 0
    return deg


def decode_frames(path: str | Path, sampling: Sampling) -> Frames:
    """Decode the frames `sampling` selects from the first video stream of `path`."""
    return decode_frames_multi(path, [sampling])[0]


def decode_frames_multi(path: str | Path, samplings: Sequence[Sampling]) -> list[Frames]:
    """The frames each of `samplings` selects, decoded in one pass (every frame is decoded once and
    converted to RGB once, however many samplings select it); one Frames per sampling, in order."""
    path = Path(path)
    timeline = read_timeline(path)  # pass 1: packets only, no decoding
    keeps = [s.select(timeline.times, timeline.duration) for s in samplings]
    wanted_pts = {int(timeline.pts[i]) for keep in keeps for i in keep}
    images: dict[int, np.ndarray] = {}
    rotation, damage = 0, _Damage()
    if wanted_pts:
        last_wanted = max(wanted_pts)
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()
        with open_container(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame, pts in _decoded(container, stream, timeline.pts, damage):
                if pts in wanted_pts and pts not in images:
                    rotation = _rotation_of(frame)
                    images[pts] = _rotate(_to_rgb(frame, reformatter), rotation)
                if pts >= last_wanted and len(images) == len(wanted_pts):
                    break
    missing = wanted_pts - images.keys()
    if missing and len(images) < MIN_DECODED_FRACTION * len(wanted_pts):
        first = float(timeline.times[np.searchsorted(timeline.pts, min(missing))])
        raise MediaError(f"{path}: corrupt video: {len(missing)} of {len(wanted_pts)} selected frame(s) could not "
                         f"be decoded (first at t={first:.2f} s; {damage.packets} corrupt packet(s)"
                         f"{': ' + damage.first_error if damage.first_error else ''})")
    out = [_frames(path, timeline, keep, images, rotation, damage) for keep in keeps]
    if missing or damage.packets:
        log.info("%s: %s", path, out[0].damage_note())
    return out


def _frames(path: Path, timeline, keep: np.ndarray, images: dict[int, np.ndarray], rotation: int,
            damage: "_Damage") -> Frames:
    kept = [i for i in keep if int(timeline.pts[i]) in images]
    rows = [images[int(timeline.pts[i])] for i in kept]
    stack = np.stack(rows) if rows else np.zeros((0, 0, 0, 3), np.uint8)
    return Frames(images=stack, times=timeline.times[kept].astype(np.float64), duration=timeline.duration,
                  fps=timeline.fps, path=str(path), start_time=timeline.start_time, rotation=rotation,
                  lost=len(keep) - len(kept), corrupt_packets=damage.packets)


@dataclass
class _Damage:
    packets: int = 0
    first_error: str = ""

    def note(self, exc: Exception) -> None:
        self.packets += 1
        self.first_error = self.first_error or str(exc)


def _decoded(container, stream, sorted_pts: np.ndarray, damage: _Damage) -> Iterator[tuple[object, int]]:
    """Decoded frames with their pts (decode order index when a frame carries no pts), packet by
    packet: a packet the decoder rejects is counted in `damage` and skipped."""
    import av

    i = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:  # the container itself is damaged here: what decoded stays
            damage.note(exc)
            return
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            damage.note(exc)
            continue
        for frame in frames:
            pts = frame.pts if frame.pts is not None else (int(sorted_pts[i]) if i < len(sorted_pts) else -1)
            i += 1
            yield frame, int(pts)


def probe(path: str | Path) -> MediaInfo:
    """Stream facts from the container header (decodes only the first frame, for rotation)."""
    import av

    path = Path(path)
    with open_container(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        info: dict = {}
        if video is not None:
            rotation = 0
            try:
                first = next(container.decode(video), None)
                rotation = _rotation_of(first) if first is not None else 0
            except av.error.FFmpegError:
                pass
            w, h = video.codec_context.width, video.codec_context.height
            if rotation % 180:
                w, h = h, w
            start = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
            end = declared_end(video)
            info.update(width=w, height=h, fps=float(video.average_rate or 0), n_frames=int(video.frames or 0),
                        rotation=rotation, start_time=start, video_codec=video.codec_context.name)
            if end is not None:
                duration = end - start
        if audio is not None:
            info.update(audio_codec=audio.codec_context.name, audio_sample_rate=int(audio.rate or 0),
                        audio_channels=int(audio.codec_context.channels or 0))
    return MediaInfo(path=str(path), duration=duration, has_video=video is not None,
                     has_audio=audio is not None, **info)
