"""Opening containers with clear errors, and reading a video stream's timeline from packets.

Shared by extract.media (frames, probe) and extract.media_audio. Every failure becomes a
MediaError whose message starts with the file and says what is wrong with it.
"""
from __future__ import annotations

import re
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np


class MediaError(Exception):
    """A media file cannot be used; the message names the file and the problem."""


@contextmanager
def open_container(path: str | Path) -> Iterator[object]:
    import av

    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: file not found")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not a media file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: zero-length file")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        raise MediaError(f"{path}: {_why_unreadable(path)}") from exc
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot open: {exc}") from exc
    try:
        yield container
    finally:
        container.close()


def _why_unreadable(path: Path) -> str:
    boxes = _mp4_top_level_boxes(path)
    if boxes and boxes[0] == b"ftyp" and b"moov" not in boxes:
        return "truncated MP4: no 'moov' index (file cut or recording not finished)"
    return "not a readable media file (unknown format, or corrupt/truncated data)"


def _mp4_top_level_boxes(path: Path, limit: int = 64) -> list[bytes]:
    """Names of the top-level ISO-BMFF boxes (empty when the file is not MP4/MOV-like)."""
    names: list[bytes] = []
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size and len(names) < limit:
            f.seek(pos)
            head = f.read(16)
            box_size, name = struct.unpack(">I4s", head[:8])
            if not re.fullmatch(rb"[a-zA-Z0-9 ]{4}", name):
                break
            names.append(name)
            if box_size == 1 and len(head) == 16:
                box_size = struct.unpack(">Q", head[8:16])[0]
            if box_size < 8:
                break
            pos += box_size
    return names


@dataclass
class Timeline:
    pts: np.ndarray        # int64 (n,) sorted presentation timestamps, stream time_base units
    times: np.ndarray      # float64 (n,) seconds from the stream start
    duration: float        # seconds from the stream start to the end of the last frame
    fps: float
    start_time: float      # stream start, seconds (container time)
    by_index: bool = False  # packets carried no timestamps: frames are matched by order


def declared_end(stream) -> float | None:
    """End of the stream (container time, seconds) as the header declares it, if it does."""
    tb = stream.time_base
    start = stream.start_time or 0
    if stream.duration:
        return float((start + stream.duration) * tb)
    tag = (stream.metadata or {}).get("DURATION")  # Matroska writes the stream's end time as a tag
    m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag or "")
    if m:
        return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    return None


def read_timeline(path: Path) -> Timeline:
    """Demux (no decoding) the first video stream to get every frame's pts; check truncation."""
    import av

    with open_container(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base
        pts, durations, untimed = [], [], 0
        try:
            for packet in container.demux(stream):
                if not packet.size or packet.is_discard:
                    continue
                value = packet.pts if packet.pts is not None else packet.dts
                if value is None:
                    untimed += 1
                else:
                    pts.append(value)
                    durations.append(packet.duration or 0)
        except av.error.FFmpegError as exc:
            raise MediaError(f"{path}: corrupt or truncated video data after {len(pts)} packets: {exc}") from exc
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        if not pts and not untimed:
            raise MediaError(f"{path}: video stream has no frames")
        by_index = untimed > 0
        if by_index:  # no usable timestamps: assume a constant rate
            rate = rate or 25.0
            tb = 1 / Fraction(rate).limit_denominator(100000)
            pts, durations = list(range(len(pts) + untimed)), [1] * (len(pts) + untimed)
        order = np.argsort(pts, kind="stable")
        pts_arr = np.asarray(pts, np.int64)[order]
        origin = stream.start_time if (stream.start_time is not None and not by_index) else int(pts_arr[0])
        origin = min(origin, int(pts_arr[0]))
        step = np.diff(pts_arr)
        last = durations[order[-1]] or (int(np.median(step)) if len(step) else 0)
        if not last and rate:
            last = int(round(1 / (rate * float(tb))))
        tbf = float(tb)
        duration = (int(pts_arr[-1]) + last - origin) * tbf
        _check_complete(path, stream, len(pts_arr), (int(pts_arr[-1]) + last) * tbf, origin * tbf)
        if not rate and duration > 0:
            rate = len(pts_arr) / duration
        return Timeline(pts=pts_arr, times=(pts_arr - origin) * tbf, duration=duration, fps=rate,
                        start_time=origin * tbf, by_index=by_index)


def _check_complete(path: Path, stream, n_packets: int, end: float, start: float) -> None:
    """A header that promises more than the file holds means the file was cut."""
    declared_frames = int(stream.frames or 0)
    if declared_frames and n_packets < 0.9 * declared_frames - 1:
        raise MediaError(f"{path}: truncated video: {n_packets} of {declared_frames} frames present "
                         f"(data ends at {end - start:.2f} s)")
    declared = declared_end(stream)
    if declared is not None and end < declared - max(0.5, 0.1 * (declared - start)):
        raise MediaError(f"{path}: truncated video: data ends at {end - start:.2f} s "
                         f"of the declared {declared - start:.2f} s")
