"""Finding the clips to process: a directory of videos and/or manifest CSVs.

- Directory: searched recursively for *.mp4, *.webm, *.avi, *.mkv, *.mov (any letter
  case); hidden files and folders (name starting with ".") are skipped. Clip id = file stem.
- Manifest CSV: a header row with a `path` column and optionally an `id` column (other
  columns are ignored); relative paths are resolved against the CSV's folder; an empty or
  missing id means the file stem.
Several inputs may be given; the result is sorted by id. Duplicate ids, missing files
and inputs that yield no clip are errors (DatasetError) naming what is wrong.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from feature_store.clip_ids import canonical_id

VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".mov")
_SHOW = 10  # how many offending entries an error message lists


class DatasetError(ValueError):
    """The clip input cannot be used; the message says which input and why."""


@dataclass(frozen=True)
class Clip:
    id: str
    path: Path


def discover_clips(inputs: str | Path | Sequence[str | Path]) -> list[Clip]:
    """Clips from a directory, a manifest CSV, or a list of those."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not items:
        raise DatasetError("no input given (expected a directory of videos or a manifest CSV)")
    clips: list[Clip] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = _scan_dir(path)
            if not found:
                raise DatasetError(f"{path}: no video files ({', '.join(e[1:] for e in VIDEO_EXTENSIONS)}) found")
        elif path.is_file():
            found = _read_manifest(path)
        else:
            raise DatasetError(f"{path}: no such file or directory")
        clips.extend(Clip(canonical_id(c.id), c.path) for c in found)
    _check_unique(clips)
    return sorted(clips, key=lambda c: c.id)


def _scan_dir(root: Path) -> list[Clip]:
    clips = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).parts
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file() and not any(part.startswith(".") for part in rel):
            clips.append(Clip(id=p.stem, path=p.resolve()))
    return clips


def _read_manifest(csv_path: Path) -> list[Clip]:
    if csv_path.suffix.lower() in VIDEO_EXTENSIONS:  # a single video given directly
        return [Clip(id=csv_path.stem, path=csv_path.resolve())]
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
    clips, missing, blank = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        cell = row[ip].strip() if ip < len(row) else ""
        if not cell:
            blank.append(line)
            continue
        path = Path(cell).expanduser()
        path = (path if path.is_absolute() else csv_path.parent / path).resolve()
        cid = (row[ii].strip() if ii is not None and ii < len(row) else "") or path.stem
        if not path.is_file():
            missing.append(f"line {line}: {path}")
        clips.append(Clip(id=cid, path=path))
    if blank:
        raise DatasetError(f"{csv_path}: empty path on line(s) {_first(map(str, blank))}")
    if missing:
        raise DatasetError(f"{csv_path}: {len(missing)} listed file(s) do not exist: {_first(missing, '; ')}")
    if not clips:
        raise DatasetError(f"{csv_path}: manifest lists no clips")
    return clips


def _check_unique(clips: list[Clip]) -> None:
    by_id: dict[str, list[Path]] = {}
    for c in clips:
        by_id.setdefault(c.id, []).append(c.path)
    dups = {k: v for k, v in by_id.items() if len(v) > 1}
    if dups:
        listed = [f"{k}: {', '.join(map(str, sorted(v)))}" for k, v in sorted(dups.items())]
        raise DatasetError(f"{len(dups)} duplicate clip id(s): {_first(listed, '; ')}")


def _first(items: Iterable[str], sep: str = ", ") -> str:
    items = list(items)
    more = f"{sep}… ({len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return sep.join(items[:_SHOW]) + more
