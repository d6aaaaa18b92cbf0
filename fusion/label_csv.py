"""Low-level reading of label and partition CSVs: header matching, id and split
normalisation, and the collector that turns every problem into one LabelError.

Ids follow the store's one rule (feature_store/clip_ids.py): `norm_id` IS `canonical_id`
(`[00001]` -> `00001`), and column names are compared as the store compares them."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable

from feature_store.clip_ids import ID_COLUMNS, canonical_id, column_key

norm_id = canonical_id
norm_name = column_key
SPLIT_COLUMNS = ("split", "partition")
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val", "devel": "val",
    "development": "val",
    "test": "test", "testing": "test",
}
MAX_LISTED = 10


class LabelError(ValueError):
    """Invalid labels; the message lists the file and the first offending rows."""


def norm_split(raw: str) -> str | None:
    return SPLIT_NAMES.get(raw.strip().lower())


class Problems:
    """Collects offending rows; raises one LabelError at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []
        self.count = 0

    def add(self, msg: str) -> None:
        self.count += 1
        if len(self.items) < MAX_LISTED:
            self.items.append(msg)

    def raise_if_any(self, hint: str = "") -> None:
        if not self.count:
            return
        more = f"\n  ... and {self.count - len(self.items)} more" if self.count > len(self.items) else ""
        tail = f"\n{hint}" if hint else ""
        raise LabelError(f"{self.path}: {self.count} problem(s) in labels:\n  "
                         + "\n  ".join(self.items) + more + tail)


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    if not path.is_file():
        raise LabelError(f"{path}: labels file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{path}: not a readable CSV ({exc})") from exc
    if not header:
        raise LabelError(f"{path}: empty file (no header row)")
    return [h.strip() for h in header], rows


def find_column(header: list[str], wanted: Iterable[str]) -> int | None:
    normed = [norm_name(h) for h in header]
    for w in wanted:
        if w in normed:
            return normed.index(w)
    return None


def parse_value(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v


def read_partition(path: str | Path) -> dict[str, str]:
    """partition CSV (id, split) → {canonical id: split}; same error rules as the labels."""
    return {cid: split for cid, (split, _) in read_partition_spelled(path).items()}


def read_partition_spelled(path: str | Path) -> dict[str, tuple[str, str]]:
    """partition CSV → {canonical id: (split, the id as the file wrote it)}."""
    path = Path(path)
    header, rows = read_csv(path)
    id_col = find_column(header, ID_COLUMNS)
    split_col = find_column(header, SPLIT_COLUMNS)
    if id_col is None or split_col is None:
        if len(header) == 2 and id_col is None and split_col is None:
            id_col, split_col = 0, 1
        else:
            raise LabelError(f"{path}: partition file needs an id column ({'/'.join(ID_COLUMNS)}) "
                             f"and a split column ({'/'.join(SPLIT_COLUMNS)}); header is {header}")
    probs = Problems(path)
    out: dict[str, tuple[str, str]] = {}
    for line, row in rows:
        written = row[id_col].strip() if id_col < len(row) else ""
        cid = norm_id(written)
        raw = row[split_col] if split_col < len(row) else ""
        split = norm_split(raw)
        if not cid:
            probs.add(f"line {line}: empty id")
        elif split is None:
            probs.add(f"line {line}: id {cid!r}: unknown split {raw!r} (use train/val/test)")
        elif cid in out:
            probs.add(f"line {line}: duplicate id {cid!r}")
        else:
            out[cid] = (split, written)
    probs.raise_if_any()
    return out
