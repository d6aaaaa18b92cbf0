"""MuSe/Hume per-clip CSV interop: `<dir>/<Feature>/<id>.csv` with header `id,timestamp,<features>`.

Export writes timestamps in seconds (shortest round-trip repr) and values with 9 significant
digits, enough for float32 (and float16) to round-trip exactly. Rows that are not vectors are
flattened in C order and their columns say where each value came from: a token set (N, D) gives
columns `<feature>_<n>_<d>` (token-major), and import turns such a complete grid of columns back
into (T, N, D) items (spec.json: item_shape [N, D]).

Import (`import_csv`) reads one folder of CSVs as one feature; `feature_sources` says which
folders `eri-store import-csv DIR [--feature NAME]` imports (every `DIR/<Feature>/` holding CSVs,
each as its own feature, or the folder named). Per file: the clip id is the id column's value
(`File_ID`, `id`, ... see clip_ids.id_column), else the file name, made canonical (`[00001]` ->
`00001`); the other columns besides `timestamp` (and a MuSe `segment_id`) are the feature values. The fingerprint is
computed from the CSVs themselves (names, sizes, fast content hashes, unit), so importing the
same files again resumes: files whose name gives an id already stored are not parsed again.
Files are parsed and written CLIPS_PER_SHARD at a time, so memory stays bounded.
spec.json records `imported_from` (the source folder), `dim`, `columns`, `id_column`,
`timestamp_unit` and `frame_step`: the median step between timestamps in seconds over the first
batch of clips (features differ in frame rate), None when every clip has one row.
"""
from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from feature_store.clip_ids import canonical_id, column_key, id_column
from feature_store.feature_dir import FeatureDir
from feature_store.fingerprint import fingerprint_of
from feature_store.names import decode_id, encode_id
from feature_store.provenance import source_attrs
from feature_store.reader import FeatureReader
from feature_store.store import FeatureStore, StoreError

log = logging.getLogger(__name__)
UNIT_SCALE = {"s": 1.0, "ms": 1e-3}
CLIPS_PER_SHARD = 256
META_COLUMNS = ("segmentid",)  # MuSe: the segment number within a clip, not a feature value


def export_csv(reader: FeatureReader, outdir: Path) -> Path:
    """Write every clip of `reader` to outdir/<feature>/<id>.csv; returns that folder."""
    target = Path(outdir) / reader.feature
    target.mkdir(parents=True, exist_ok=True)
    for clip_id in reader.ids():
        data, times = reader.get(clip_id)
        if data.dtype.kind != "f":
            raise StoreError(f"{reader.feature}: clip {clip_id!r} holds {data.dtype} data (e.g. face crops); "
                             f"CSV export is for float features")
        header = ["id", "timestamp"] + _column_names(reader.feature, data.shape[1:])
        path = target / f"{encode_id(clip_id)}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for t, row in zip(times.tolist(), data.astype(np.float32).reshape(len(data), -1)):
                w.writerow([clip_id, repr(float(t)), *("%.9g" % v for v in row.tolist())])
    return target


def _column_names(feature: str, row: tuple[int, ...]) -> list[str]:
    return ["_".join([feature, *map(str, index)]) for index in np.ndindex(*row)]


_GRID = re.compile(r"^(.+)_(\d+)_(\d+)$")


def grid_shape(columns: list[str]) -> tuple[int, int] | None:
    """(N, D) when `columns` are exactly `<p>_0_0, <p>_0_1, …, <p>_{N-1}_{D-1}` (an exported token set)."""
    found = [_GRID.match(c) for c in columns]
    if not columns or not all(found) or len({m.group(1) for m in found}) != 1:
        return None
    n, d = 1 + max(int(m.group(2)) for m in found), 1 + max(int(m.group(3)) for m in found)
    if n < 2 or d < 2 or _column_names(found[0].group(1), (n, d)) != columns:
        return None
    return n, d


@dataclass
class ImportResult:
    feature_dir: FeatureDir
    imported: int
    skipped: int
    failed: dict[str, str]
    folder: Path = Path()
    spec: dict = field(default_factory=dict)


@dataclass
class _Parsed:
    path: Path
    clip_id: str
    data: np.ndarray
    times: np.ndarray
    columns: list[str]
    id_column: str | None


def _has_csv(folder: Path) -> bool:
    return next(iter(folder.glob("*.csv")), None) is not None


def _csv_folders(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and _has_csv(p))


def feature_sources(directory: Path, feature: str | None = None) -> list[tuple[str, Path]]:
    """(feature name, CSV folder) pairs to import from `directory`.

    Without `feature`: every non-hidden sub-folder holding *.csv, named after the folder, else
    `directory` itself named after itself. With `feature`: the sub-folder of that name, else
    `directory` itself (its CSVs) stored under that name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise StoreError(f"{directory}: not a directory")
    subs = _csv_folders(directory)
    if feature is not None:
        if (directory / feature).is_dir():
            return [(feature, directory / feature)]
        if _has_csv(directory):
            return [(feature, directory)]
        listed = f"; its feature folders are {', '.join(p.name for p in subs)}" if subs else ""
        raise StoreError(f"{directory}: no sub-folder {feature!r} and no .csv files in it{listed}")
    if subs:
        if _has_csv(directory):
            log.warning("%s: the .csv files directly in it are not imported (feature folders found: %s); "
                        "import them with --feature NAME", directory, ", ".join(p.name for p in subs))
        return [(p.name, p) for p in subs]
    if _has_csv(directory):
        return [(directory.resolve().name, directory)]
    raise StoreError(f"{directory}: no .csv files, and no sub-folder holding .csv files")


def _source_folder(directory: Path, feature: str) -> Path:
    folder = directory / feature if (directory / feature).is_dir() else directory
    if not folder.is_dir():
        raise StoreError(f"{directory}: not a directory")
    return folder


def _stem_id(path: Path) -> str:
    return canonical_id(decode_id(path.stem))


def _read_one(path: Path, unit: float) -> _Parsed:
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path}: empty file (expected a header `id,timestamp,...`)")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    lower = [h.lower() for h in header]
    if "timestamp" not in lower:
        raise ValueError(f"{path}: no 'timestamp' column in header {header[:5]}")
    ts_col = lower.index("timestamp")
    id_col = id_column(header)
    meta = {id_col, ts_col} | {i for i, h in enumerate(header) if column_key(h) in META_COLUMNS}
    feat_cols = [i for i in range(len(header)) if i not in meta]
    if not body or not feat_cols:
        raise ValueError(f"{path}: no rows or no feature columns")
    values = np.empty((len(body), len(feat_cols)), dtype=np.float64)
    times = np.empty(len(body), dtype=np.float64)
    for n, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(f"{path} line {n + 2}: {len(row)} fields, header has {len(header)}")
        try:
            times[n] = float(row[ts_col]) * unit
            values[n] = [float(row[i]) for i in feat_cols]
        except ValueError as exc:
            raise ValueError(f"{path} line {n + 2}: non-numeric value ({exc})") from None
    clip_id = _stem_id(path)
    if id_col is not None:
        ids = {canonical_id(row[id_col]) for row in body}
        if len(ids) != 1:
            raise ValueError(f"{path}: the {header[id_col]!r} column holds {len(ids)} different ids")
        clip_id = ids.pop()
        if not clip_id:
            raise ValueError(f"{path}: the {header[id_col]!r} column is empty")
    return _Parsed(path, clip_id, values.astype(np.float32), times, [header[i] for i in feat_cols],
                   header[id_col] if id_col is not None else None)


def _median_step(batch: list[_Parsed]) -> float | None:
    steps = [np.diff(p.times) for p in batch if len(p.times) > 1]
    if not steps:
        return None
    return float(f"{float(np.median(np.concatenate(steps))):.9g}")


def _spec(feature: str, folder: Path, unit: str, batch: list[_Parsed], dtype: str) -> dict:
    first = batch[0]
    spec = {"name": feature, "imported_from": str(folder.resolve()), "dim": int(first.data.shape[1]),
            "dtype": dtype, "columns": first.columns, "id_column": first.id_column,
            "timestamp_unit": unit, "frame_step": _median_step(batch)}
    grid = grid_shape(first.columns)
    if grid is not None:  # an exported token set: (T, N*D) columns back to (T, N, D) items
        spec.update(dim=grid[1], item_shape=list(grid))
    return spec


def import_csv(store: FeatureStore, directory: Path, feature: str, timestamp_unit: str = "s",
               progress: Callable[[int], None] | None = None, dtype: str = "float32") -> ImportResult:
    """Import `<directory>/<feature>/*.csv` (or `<directory>/*.csv`) as feature `feature`, stored as
    `dtype` (float32, or float16 for half the disk).

    `progress(n)` is called after each batch with the number of files handled in it."""
    if timestamp_unit not in UNIT_SCALE:
        raise StoreError(f"timestamp unit must be one of {sorted(UNIT_SCALE)}, got {timestamp_unit!r}")
    if dtype not in ("float32", "float16"):
        raise StoreError(f"storage dtype must be float32 or float16, got {dtype!r}")
    folder = _source_folder(Path(directory), feature)
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise StoreError(f"{folder}: no .csv files to import")
    provenance = []
    for path in files:
        attrs = source_attrs(path)
        provenance.append([path.name, attrs["size"], attrs["content_hash"]])
    described = {"imported": feature, "timestamp_unit": timestamp_unit, "files": provenance}
    if dtype != "float32":  # only then, so that earlier imports keep their fingerprints
        described["dtype"] = dtype
    fp = fingerprint_of(described)
    fd = FeatureDir(store.root / feature / fp, feature, fp)
    done = fd.completed()
    todo = [p for p in files if _stem_id(p) not in done]
    skipped, imported, failed = len(files) - len(todo), 0, {}
    sources: dict[str, Path] = {}  # clip id -> the file it came from in this import
    for start in range(0, len(todo), CLIPS_PER_SHARD):
        batch = []
        for path in todo[start:start + CLIPS_PER_SHARD]:
            try:
                item = _read_one(path, UNIT_SCALE[timestamp_unit])
            except (ValueError, OSError, csv.Error, UnicodeDecodeError) as exc:
                failed[_stem_id(path)] = str(exc)
                continue
            if item.clip_id in done:
                skipped += 1
            elif item.clip_id in sources:
                failed[_stem_id(path)] = f"{path}: clip id {item.clip_id!r} is also the id of {sources[item.clip_id]}"
            else:
                sources[item.clip_id] = path
                batch.append(item)
        if batch and not fd.spec_path.exists():
            fd = store.feature_dir(feature, fp, spec=_spec(feature, folder, timestamp_unit, batch, dtype))
        if batch:
            imported += _write_batch(fd, batch, failed)
        if progress is not None:
            progress(len(todo[start:start + CLIPS_PER_SHARD]))
    if not fd.spec_path.exists():
        raise StoreError(f"{folder}: no CSV could be read; first problems: {list(failed.values())[:3]}")
    for clip_id, reason in failed.items():
        fd.record_error(clip_id, reason)
    return ImportResult(fd, imported, skipped, failed, folder, fd.spec)


def _write_batch(fd: FeatureDir, batch: list[_Parsed], failed: dict[str, str]) -> int:
    spec = fd.spec
    columns = spec.get("columns")
    row = tuple(spec.get("item_shape") or (spec.get("dim"),))
    dim = int(np.prod(row))
    written = 0
    with fd.open_shard() as shard:
        for item in batch:
            if item.data.shape[1] != dim:
                failed[item.clip_id] = f"{item.path}: {item.data.shape[1]} feature columns, expected {dim}"
                continue
            if columns is not None and item.columns != columns:
                failed[item.clip_id] = (f"{item.path}: feature columns {item.columns[:3]}... differ from "
                                        f"the feature's {columns[:3]}...")
                continue
            try:
                shard.add(item.clip_id, item.data.reshape(len(item.data), *row), item.times,
                          attrs={**source_attrs(item.path), "extractor": "csv-import", "extractor_version": "1"})
                written += 1
            except ValueError as exc:  # e.g. empty cells (NaN): this clip fails alone
                failed[item.clip_id] = f"{item.path}: {exc}"
    return written
