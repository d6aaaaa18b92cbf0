"""MuSe/Hume per-clip CSV interop: `<dir>/<Feature>/<id>.csv` with header `id,timestamp,<features>`.

Export writes timestamps in seconds (shortest round-trip repr) and values with 9 significant
digits, enough for float32 to round-trip exactly. Import reads such a folder into the store under
a fingerprint computed from the CSVs themselves (names, sizes, fast content hashes, header), so
importing the same files again resumes instead of duplicating.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from feature_store.feature_dir import FeatureDir
from feature_store.fingerprint import fingerprint_of
from feature_store.names import decode_id, encode_id
from feature_store.provenance import source_attrs
from feature_store.reader import FeatureReader
from feature_store.store import FeatureStore, StoreError

ID_COLUMNS = ("id", "segment_id", "file_id", "clip_id")
UNIT_SCALE = {"s": 1.0, "ms": 1e-3}
CLIPS_PER_SHARD = 256


def export_csv(reader: FeatureReader, outdir: Path) -> Path:
    """Write every clip of `reader` to outdir/<feature>/<id>.csv; returns that folder."""
    target = Path(outdir) / reader.feature
    target.mkdir(parents=True, exist_ok=True)
    for clip_id in reader.ids():
        data, times = reader.get(clip_id)
        if data.ndim != 2:
            raise StoreError(f"{reader.feature}: clip {clip_id!r} has data shape {data.shape}; "
                             f"CSV export supports (T, dim) features only")
        header = ["id", "timestamp"] + [f"{reader.feature}_{i}" for i in range(data.shape[1])]
        path = target / f"{encode_id(clip_id)}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for t, row in zip(times.tolist(), data.astype(np.float32)):
                w.writerow([clip_id, repr(float(t)), *("%.9g" % v for v in row.tolist())])
    return target


@dataclass
class ImportResult:
    feature_dir: FeatureDir
    imported: int
    skipped: int
    failed: dict[str, str]


def _source_folder(directory: Path, feature: str) -> Path:
    folder = directory / feature if (directory / feature).is_dir() else directory
    if not folder.is_dir():
        raise StoreError(f"{directory}: not a directory")
    return folder


def _read_one(path: Path, unit: float) -> tuple[str, np.ndarray, np.ndarray, list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path}: empty file (expected a header `id,timestamp,...`)")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    lower = [h.lower() for h in header]
    if "timestamp" not in lower:
        raise ValueError(f"{path}: no 'timestamp' column in header {header[:5]}")
    ts_col = lower.index("timestamp")
    id_col = next((lower.index(c) for c in ID_COLUMNS if c in lower), None)
    feat_cols = [i for i in range(len(header)) if i not in (id_col, ts_col)]
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
    clip_id = decode_id(path.stem)
    if id_col is not None:
        ids = {row[id_col] for row in body}
        if len(ids) != 1:
            raise ValueError(f"{path}: the {header[id_col]!r} column holds {len(ids)} different ids")
        clip_id = ids.pop()
    return clip_id, values.astype(np.float32), times, [header[i] for i in feat_cols]


def import_csv(store: FeatureStore, directory: Path, feature: str, timestamp_unit: str = "s") -> ImportResult:
    """Import `<directory>/<feature>/*.csv` (or `<directory>/*.csv`) as feature `feature`."""
    if timestamp_unit not in UNIT_SCALE:
        raise StoreError(f"timestamp unit must be one of {sorted(UNIT_SCALE)}, got {timestamp_unit!r}")
    folder = _source_folder(Path(directory), feature)
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise StoreError(f"{folder}: no .csv files to import")
    provenance = []
    for path in files:
        attrs = source_attrs(path)
        provenance.append([path.name, attrs["size"], attrs["content_hash"]])
    fp = fingerprint_of({"imported": feature, "timestamp_unit": timestamp_unit, "files": provenance})
    parsed, failed = {}, {}
    for path in files:
        try:
            clip_id, data, times, columns = _read_one(path, UNIT_SCALE[timestamp_unit])
        except (ValueError, OSError, csv.Error, UnicodeDecodeError) as exc:
            failed[path.stem] = str(exc)
            continue
        parsed[path] = (clip_id, data, times, columns)
    if not parsed:
        raise StoreError(f"{folder}: no CSV could be read; first problems: {list(failed.values())[:3]}")
    first = next(iter(parsed.values()))
    dim, columns = first[1].shape[1], first[3]
    spec = {"name": feature, "imported_from": str(folder.resolve()), "dim": dim, "dtype": "float32",
            "columns": columns, "timestamp_unit": timestamp_unit}
    fd = store.feature_dir(feature, fp, spec=spec)
    done = fd.completed()
    todo = [(p, item) for p, item in parsed.items() if item[0] not in done]
    imported = 0
    for start in range(0, len(todo), CLIPS_PER_SHARD):
        with fd.open_shard() as shard:
            for path, (clip_id, data, times, cols) in todo[start:start + CLIPS_PER_SHARD]:
                if data.shape[1] != dim:
                    failed[clip_id] = f"{path}: {data.shape[1]} feature columns, expected {dim}"
                    continue
                try:
                    shard.add(clip_id, data, times,
                              attrs={**source_attrs(path), "extractor": "csv-import", "extractor_version": "1"})
                    imported += 1
                except ValueError as exc:  # e.g. empty cells (NaN): this clip fails alone
                    failed[clip_id] = f"{path}: {exc}"
    for clip_id, reason in failed.items():
        fd.record_error(clip_id, reason)
    return ImportResult(fd, imported, len(parsed) - len(todo), failed)
