"""Emotion-intensity labels: read, validate, and split.

A labels CSV has an id column (``File_ID`` or ``id``; ids follow the store's canonical
rule, feature_store/clip_ids.py: Hume's ``[00001]`` is clip ``00001``; the spelling the file
used is kept in ``Labels.spelled`` so predictions CSVs can write it back), the 7 emotion
columns (names matched ignoring case, spaces, hyphens and underscores, so ``Empathic-Pain``
and ``empathic_pain`` both work), other columns ignored, and optionally a split column
(``Split``/``Partition``) or a separate partition CSV (id, split).

Scaling: values are divided by ``scale`` (default 1, i.e. none) and must then lie in
[0, 1]. Nothing is guessed: labels given as percentages need ``scale=100``
(``eri-fit --label-scale 100``); the error message suggests it when every value lies
in [0, 100].

Unlabelled rows: a row whose 7 emotion cells are all empty is accepted only in the
``test`` split (the challenge's data_info.csv lists test clips that way); its values
are NaN and ``Labels.labelled`` is False. Anything else that is wrong is collected and
raised as ONE ``LabelError`` naming the file, line numbers and values.

Matching the store (``align_ids``): ids are looked up as they are; all-digit ids the store
lacks are matched by integer value when that is unambiguous (labels ``1`` -> clip ``00001``,
logged); ambiguous ids, or labels sharing no id with the store, raise a LabelError saying
which ids and how they differ.
"""
from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Collection, Iterable, Mapping

import numpy as np

from feature_store import FeatureStore, match_ids
from fusion.label_csv import (ID_COLUMNS, SPLIT_COLUMNS, LabelError, Problems, find_column, norm_id,
                              norm_name, norm_split, parse_value, read_csv, read_partition,
                              read_partition_spelled)

log = logging.getLogger(__name__)

EMOTIONS: tuple[str, ...] = (
    "adoration", "amusement", "anxiety", "disgust", "empathic_pain", "fear", "surprise",
)
# Column names as the challenge writes them (used for predictions CSVs).
EMOTION_COLUMNS: tuple[str, ...] = (
    "Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear", "Surprise",
)
_TOLERANCE = 1e-6  # float noise around 0 and 1 is accepted and clipped

__all__ = ["EMOTIONS", "EMOTION_COLUMNS", "LabelError", "Labels", "load_labels", "read_partition",
           "write_labels", "norm_id", "align_ids", "store_clip_ids"]


@dataclass(frozen=True)
class Labels:
    ids: list[str]
    values: np.ndarray          # (N, 7) float32 in [0, 1]; NaN rows = unlabelled test clips
    split: list[str] | None     # "train" / "val" / "test" per id, or None
    source: str = ""
    spelled: list[str] | None = None  # each id as the file wrote it (e.g. "[00001]"); None = as ids

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.values).any(axis=1)

    def index(self) -> dict[str, int]:
        return {cid: i for i, cid in enumerate(self.ids)}

    def select(self, ids: Iterable[str]) -> "Labels":
        pos = self.index()
        ids = list(ids)
        rows = [pos[i] for i in ids]
        split = [self.split[r] for r in rows] if self.split is not None else None
        spelled = [self.spelled[r] for r in rows] if self.spelled is not None else None
        return Labels(ids, self.values[rows], split, self.source, spelled)

    def spelling(self) -> dict[str, str]:
        """id -> the id as the labels (or partition) file wrote it."""
        return dict(zip(self.ids, self.spelled if self.spelled is not None else self.ids))

    def renamed(self, mapping: Mapping[str, str]) -> "Labels":
        """The same rows under other ids (e.g. the store's, from `align_ids`); spellings kept."""
        return replace(self, ids=[mapping.get(c, c) for c in self.ids],
                       spelled=list(self.spelling().values()))

    def ids_in(self, split: str) -> list[str]:
        if self.split is None:
            raise LabelError(f"{self.source}: labels have no split column; cannot select {split!r}")
        return [cid for cid, s in zip(self.ids, self.split) if s == split]


def load_labels(path: str | Path, clip_ids: Iterable[str] | None = None,
                partition: str | Path | None = None, split_column: str | None = None,
                scale: float = 1.0) -> Labels:
    """Read and validate a labels CSV (see the module docstring for the rules).

    clip_ids: when given, every labelled id must be among them.
    partition: a separate (id, split) CSV; exclusive with a split column.
    split_column: the split column's name; default: a column named Split or Partition.
    """
    path = Path(path)
    header, rows = read_csv(path)
    id_col = find_column(header, ID_COLUMNS)
    emo_cols = [find_column(header, [norm_name(e)]) for e in EMOTIONS]
    missing = [e for e, c in zip(EMOTION_COLUMNS, emo_cols) if c is None]
    if id_col is None or missing:
        what = (["id column (File_ID or id)"] if id_col is None else []) + missing
        raise LabelError(f"{path}: missing column(s) {', '.join(what)}; header is {header}")
    if split_column is not None:
        split_col = find_column(header, [norm_name(split_column)])
        if split_col is None:
            raise LabelError(f"{path}: split column {split_column!r} not found; header is {header}")
    else:
        split_col = find_column(header, SPLIT_COLUMNS)
    if partition is not None and split_column is not None:
        raise LabelError(f"{path}: give either a split column or a partition file, not both")
    part_spelled = read_partition_spelled(partition) if partition is not None else None
    part = {c: v[0] for c, v in part_spelled.items()} if part_spelled is not None else None
    if part is not None:
        split_col = None
    if not rows:
        raise LabelError(f"{path}: no data rows")

    probs = Problems(path)
    ids: list[str] = []
    written: list[str] = []
    values: list[list[float]] = []
    splits: list[str] = []
    seen: dict[str, int] = {}
    in_range_100 = True
    for line, row in rows:
        cells = [row[c].strip() if c < len(row) else "" for c in emo_cols]
        cid = norm_id(row[id_col]) if id_col < len(row) else ""
        if not cid:
            probs.add(f"line {line}: empty id")
            continue
        if cid in seen:
            probs.add(f"line {line}: duplicate id {cid!r} (first on line {seen[cid]})")
            continue
        seen[cid] = line
        split = None
        if split_col is not None:
            raw = row[split_col] if split_col < len(row) else ""
            split = norm_split(raw)
            if split is None:
                probs.add(f"line {line}: id {cid!r}: unknown split {raw!r} (use train/val/test)")
                continue
        elif part is not None:
            split = part.get(cid)
            if split is None:
                probs.add(f"line {line}: id {cid!r} is not in partition file {partition}")
                continue
        if all(c == "" for c in cells):
            if split != "test":
                probs.add(f"line {line}: id {cid!r}: no label values (only test clips may be unlabelled)")
                continue
            vals = [math.nan] * len(EMOTIONS)
        else:
            vals = []
            for name, cell in zip(EMOTION_COLUMNS, cells):
                v = parse_value(cell)
                if v is None:
                    probs.add(f"line {line}: id {cid!r}: {name} = {cell!r} is not a number")
                elif not math.isfinite(v):
                    probs.add(f"line {line}: id {cid!r}: {name} = {cell!r} (NaN/inf)")
                else:
                    v = v / scale
                    if not (-_TOLERANCE <= v <= 1 + _TOLERANCE):
                        in_range_100 &= 0 <= v * scale <= 100
                        probs.add(f"line {line}: id {cid!r}: {name} = {cell} is outside [0, 1]"
                                  + (f" after dividing by {scale:g}" if scale != 1 else ""))
                    vals.append(min(max(v, 0.0), 1.0))
            if len(vals) != len(EMOTIONS):
                continue
        ids.append(cid)
        written.append(row[id_col].strip())
        values.append(vals)
        splits.append(split)

    if part is not None:
        for cid, split in part.items():
            if cid not in seen:
                if split == "test":
                    ids.append(cid)
                    written.append(part_spelled[cid][1])
                    values.append([math.nan] * len(EMOTIONS))
                    splits.append(split)
                else:
                    probs.add(f"id {cid!r} ({split}) is in {partition} but has no labels")
    if clip_ids is not None:
        known = {norm_id(c) for c in clip_ids}
        for cid in ids:
            if cid not in known:
                probs.add(f"line {seen.get(cid, '?')}: id {cid!r} has no clip")
    hint = ("hint: every value lies in [0, 100]; if these are percentages pass scale=100 "
            "(eri-fit --label-scale 100)" if in_range_100 and scale == 1 and
            any("outside [0, 1]" in m for m in probs.items) else "")
    probs.raise_if_any(hint)
    has_split = split_col is not None or part is not None
    return Labels(ids, np.asarray(values, dtype=np.float32).reshape(-1, len(EMOTIONS)),
                  splits if has_split else None, str(path), written)


def store_clip_ids(store: FeatureStore, refs: Iterable[str]) -> set[str]:
    """Every clip id held by any of the features `refs` (NAME or NAME@FP)."""
    return set().union(*(store.resolve(r).completed() for r in refs))


def align_ids(ids: Iterable[str], available: Collection[str], source: str = "labels") -> dict[str, str]:
    """{id: the store's id for it} for `ids` (unmatched ids map to themselves, so the
    missing-feature policy reports them). All-digit ids are matched by integer value when
    unambiguous (logged); ambiguous ids, or no id in common at all, raise LabelError."""
    ids = list(ids)
    m = match_ids(ids, available)
    if m.ambiguous:
        raise LabelError(f"{source}: {len(m.ambiguous)} id(s) match more than one stored clip by integer "
                         f"value: {m.describe_ambiguous()}. Write these ids exactly as the store holds them "
                         f"(see `eri-store ls` / the feature CSVs' file names).")
    if ids and available and not m.mapping:
        raise LabelError(f"{source}: none of its {len(ids)} id(s) is a clip in the store (ids look like "
                         f"{_examples(ids)}; the store's clips look like {_examples(available)}). Write the "
                         f"ids as the store holds them: clip ids are file stems or the CSVs' id column, "
                         f"and `[00001]` equals `00001`.")
    if m.by_value:
        sample = ", ".join(f"{k!r} -> {v!r}" for k, v in list(m.by_value.items())[:3])
        log.warning("%s: %d id(s) matched stored clips by integer value (%s%s)", source, len(m.by_value),
                    sample, ", ..." if len(m.by_value) > 3 else "")
    return {c: m.mapping.get(c, c) for c in ids}


def _examples(ids: Iterable[str], n: int = 3) -> str:
    return ", ".join(repr(c) for c in sorted(ids)[:n])


def write_labels(path: str | Path, ids: list[str], values: np.ndarray,
                 split: list[str] | None = None) -> None:
    """Write a labels CSV in the challenge layout (File_ID, [Split,] 7 emotions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["File_ID"] + (["Split"] if split is not None else []) + list(EMOTION_COLUMNS))
        for i, cid in enumerate(ids):
            w.writerow([cid] + ([split[i]] if split is not None else [])
                       + [f"{float(v):.6g}" for v in values[i]])
