"""Finding the clips to process: a directory of media files and/or manifest CSVs.

- Directory: searched recursively; hidden files and folders (name starting with ".") are left
  out. A file is a clip when its extension is a known audio/video container (MEDIA_EXTENSIONS,
  any letter case) or, for any other extension that is not a known non-media type, when PyAV
  opens it and finds an audio or video stream that is not a still image. A `.wav` beside a video
  of the same stem is that video's audio (extract.media_audio), not a clip of its own. Every file
  not taken is listed with the reason (`Discovery.skipped`): dangling symlinks, still images,
  files PyAV cannot read, non-media types.
- Clip id: by default the file stem (`--id-from name`); `--id-from relpath` uses the path below
  the input folder with its extension (`sub/a.mkv`), which tells apart files that share a stem.
  Ids go through the store's canonical clip-id rule (feature_store.canonical_id).
- Manifest CSV: a header row with a `path` column and optionally an `id` column (other columns
  are ignored); relative paths are resolved against the CSV's folder; an empty or missing id
  means the file stem.

One bad entry never refuses the run: files that share an id (`a.mkv` and `a.mov`) and manifest
rows whose file is missing become failed clips (`Discovery.failed`, recorded per feature like
any clip failure, with a reason naming the files and the option that resolves it); the other
clips are processed. Only inputs that cannot be used at all (no such path, an unreadable
manifest, a folder without a single media file) raise DatasetError.
"""
from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

from feature_store import canonical_id

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
                    ".flv", ".3gp", ".ogv", ".wmv", ".asf")
AUDIO_EXTENSIONS = (".wav", ".m4a", ".mp3", ".flac", ".ogg", ".opus", ".aac", ".wma")
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS + AUDIO_EXTENSIONS
NOT_MEDIA = (".csv", ".txt", ".json", ".jsonl", ".md", ".yaml", ".yml", ".py", ".h5", ".hdf5", ".npy", ".npz",
             ".pkl", ".pt", ".pth", ".safetensors", ".zip", ".tar", ".gz", ".log", ".jpg", ".jpeg", ".png",
             ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pdf", ".srt", ".vtt")
IdFrom = Literal["name", "relpath"]
ID_FROM = ("name", "relpath")
_SHOW = 10  # how many offending entries a message lists


class DatasetError(ValueError):
    """The clip input cannot be used at all; the message says which input and why."""


@dataclass(frozen=True)
class Clip:
    id: str
    path: Path


@dataclass(frozen=True)
class InputFailure:
    """A clip id that cannot be processed because of its input entry (not its content)."""

    paths: tuple[Path, ...]
    reason: str


@dataclass
class Discovery:
    clips: list[Clip] = field(default_factory=list)                   # unambiguous clips, sorted by id
    failed: dict[str, InputFailure] = field(default_factory=dict)     # clip id -> why it cannot run
    skipped: list[tuple[Path, str]] = field(default_factory=list)     # files not taken, and why

    def skipped_summary(self) -> list[str]:
        """One line per reason: count and the first few files."""
        by_reason: dict[str, list[Path]] = {}
        for path, why in self.skipped:
            by_reason.setdefault(why, []).append(path)
        return [f"{len(paths)} {why}: {_first(map(str, paths))}" for why, paths in by_reason.items()]


def discover(inputs: str | Path | Sequence[str | Path], id_from: IdFrom = "name") -> Discovery:
    """Clips from a directory, a manifest CSV, a single media file, or a list of those."""
    if id_from not in ID_FROM:
        raise DatasetError(f"--id-from {id_from!r}: use one of {', '.join(ID_FROM)}")
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not items:
        raise DatasetError("no input given (expected a directory of videos or a manifest CSV)")
    found = Discovery()
    candidates: list[Clip] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            clips = _scan_dir(path, id_from, found)
            if not clips:
                raise DatasetError(f"{path}: no media files found ({_skipped_note(found)})")
        elif path.is_file() and path.suffix.lower() in MEDIA_EXTENSIONS:  # a single file given directly
            clips = [Clip(canonical_id(path.stem if id_from == "name" else path.name), path.resolve())]
        elif path.is_file():
            clips = _read_manifest(path, found)
        else:
            raise DatasetError(f"{path}: no such file or directory")
        candidates.extend(clips)
    found.clips = _unique(candidates, found, id_from)
    return found


def discover_clips(inputs: str | Path | Sequence[str | Path], id_from: IdFrom = "name") -> list[Clip]:
    """The unambiguous clips of `inputs` (see `discover` for what was skipped or failed)."""
    return discover(inputs, id_from).clips


def _scan_dir(root: Path, id_from: IdFrom, found: Discovery) -> list[Clip]:
    clips = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        stems = {Path(n).stem for n in filenames if Path(n).suffix.lower() in VIDEO_EXTENSIONS}
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            why = _not_a_clip(path, stems)
            if why:
                if why != "sidecar":
                    found.skipped.append((path, why))
                continue
            rel = path.relative_to(root).as_posix()
            clips.append(Clip(canonical_id(path.stem if id_from == "name" else rel), path.resolve()))
    return clips


def _not_a_clip(path: Path, video_stems: set[str]) -> str | None:
    """Why `path` is not taken as a clip (None: it is one; "sidecar": a video's .wav audio)."""
    suffix = path.suffix.lower()
    if path.is_symlink() and not path.exists():
        return "dangling symlink(s)"
    if not path.is_file():
        return "not regular file(s)"
    if suffix == ".wav" and path.stem in video_stems:
        return "sidecar"
    if suffix in MEDIA_EXTENSIONS:
        return None
    if suffix in NOT_MEDIA:
        return f"non-media file(s) ({suffix})"
    return _probe(path)


def _probe(path: Path) -> str | None:
    """None if PyAV opens `path` and finds an audio or video stream that is not a still image."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if container.format.name.endswith("_pipe") or container.format.name.startswith("image2"):
                return "still image(s)"
            if not (container.streams.video or container.streams.audio):
                return "file(s) with no audio or video stream"
            return None
    except (av.error.FFmpegError, OSError, ValueError):
        return "file(s) PyAV cannot open as media"


def _read_manifest(csv_path: Path, found: Discovery) -> list[Clip]:
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{csv_path}: cannot read manifest: {exc}") from exc
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DatasetError(f"{csv_path}: manifest is empty (expected a header with 'path' and optional 'id')")
    header = [h.strip().lower() for h in rows[0]]
    if "path" not in header:
        raise DatasetError(f"{csv_path}: manifest header {rows[0]} has no 'path' column "
                           "(expected columns: id (optional), path)")
    ip, ii = header.index("path"), (header.index("id") if "id" in header else None)
    clips = []
    for line, row in enumerate(rows[1:], start=2):
        cell = row[ip].strip() if ip < len(row) else ""
        raw_id = row[ii].strip() if ii is not None and ii < len(row) else ""
        if not cell:
            found.skipped.append((csv_path, f"manifest row(s) with an empty path (line {line})"))
            continue
        path = Path(cell).expanduser()
        path = (path if path.is_absolute() else csv_path.parent / path).resolve()
        cid = canonical_id(raw_id or path.stem)
        if not path.is_file():
            found.failed[cid] = InputFailure((path,), f"{csv_path} line {line}: file not found: {path}")
            continue
        clips.append(Clip(id=cid, path=path))
    if not clips and not found.failed:
        raise DatasetError(f"{csv_path}: manifest lists no clips")
    return clips


def _unique(clips: list[Clip], found: Discovery, id_from: IdFrom) -> list[Clip]:
    """Clips whose id is theirs alone; ids shared by several files become failed clips."""
    by_id: dict[str, list[Path]] = {}
    for c in clips:
        by_id.setdefault(c.id, []).append(c.path)
    for cid, paths in by_id.items():
        if len(paths) > 1 or cid in found.failed:
            paths = sorted(set(paths) | set(found.failed[cid].paths if cid in found.failed else ()))
            hint = ("--id-from relpath (ids from the path below the input folder, with the extension)"
                    if id_from == "name" else "distinct ids in a manifest CSV (id,path)")
            found.failed[cid] = InputFailure(tuple(paths), f"{len(paths)} files share the clip id {cid!r}: "
                                             f"{', '.join(map(str, paths))}; none is used. Rename one, or use {hint}")
    return sorted((c for c in clips if c.id not in found.failed), key=lambda c: c.id)


def _skipped_note(found: Discovery) -> str:
    lines = found.skipped_summary()
    return "; ".join(lines) if lines else f"media extensions: {', '.join(e[1:] for e in MEDIA_EXTENSIONS)}"


def _first(items: Iterable[str], sep: str = ", ") -> str:
    items = list(items)
    more = f"{sep}… ({len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return sep.join(items[:_SHOW]) + more
