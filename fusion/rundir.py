"""Files of a run directory.

RUNDIR/
  config.yaml                 the resolved configuration
  features.json               features used: ref (name@fingerprint), dim, steps, length, modality
  metrics.json                per model, mean ± std over seeds, ensemble, test, data summary
  history.csv                 one row per (model, epoch)
  predictions_val.csv         ensemble predictions on the validation clips (out-of-fold with --folds)
  predictions_test.csv        ensemble predictions on the test clips (when there are any)
  checkpoints/<model>/        model.safetensors, norm.safetensors, model.json (see checkpoint.py)
  plots/                      learning_curves.png, pcc_per_emotion.png, scatter_val.png
Predictions CSVs use the challenge layout: File_ID then the 7 emotion columns; File_ID is
written as the labels (or ids) file spelled it (`[00001]` stays `[00001]`).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from fusion.labels import EMOTION_COLUMNS


def write_predictions(path: Path, ids: list[str], preds: np.ndarray,
                      spelling: Mapping[str, str] | None = None) -> None:
    """One row per id; `spelling` maps an id to how the user's file wrote it."""
    spelling = spelling or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["File_ID", *EMOTION_COLUMNS])
        for cid, row in zip(ids, preds):
            w.writerow([spelling.get(cid, cid), *(f"{float(v):.6f}" for v in row)])


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def write_history(path: Path, histories: dict[str, list[dict]]) -> None:
    rows = [{"model": name, **rec} for name, hist in histories.items() for rec in hist]
    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def read_ids_file(path: Path) -> list[str]:
    """One id per line (a header line `File_ID`/`id` and blank lines are skipped; a CSV's
    first column is used); ids are canonical (`[00001]` -> `00001`)."""
    return list(read_ids_file_spelled(path))


def read_ids_file_spelled(path: Path) -> dict[str, str]:
    """{canonical id: the id as the file wrote it}, in file order (see read_ids_file)."""
    from feature_store import ID_COLUMNS, canonical_id
    from feature_store.clip_ids import column_key
    ids: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        cell = line.split(",")[0].strip()
        if cell and column_key(cell) not in ID_COLUMNS:
            ids.setdefault(canonical_id(cell), cell)
    if not ids:
        raise ValueError(f"{path}: no clip ids")
    return ids
