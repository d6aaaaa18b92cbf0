"""Ensembles across run directories (`eri-ensemble`): average the members' validation and
test predictions, optionally choosing members by greedy forward selection on validation
mean PCC, and write a directory like a run's.

Members may differ in head, features and seeds, but must predict the same clips: a run
whose validation or test clips differ from the first member's is an error naming them.
Validation targets come from the labels the first member was trained with (its
inputs.json), or from `labels` / `partition` when given.

ENS_DIR/
  ensemble.json          members (run dirs), how many times each was selected, the mode
  selection.csv          greedy mode: one row per step (added member, val mean PCC)
  metrics.json           per member val score, the ensemble's, the first member's ridge baseline
  predictions_val.csv    predictions_test.csv    (challenge layout, ids as the labels spell them)
"""
from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from feature_store.clip_ids import canonical_id
from fusion.labels import EMOTIONS, load_labels
from fusion.metrics import score
from fusion.rundir import INPUTS_FILE, write_json, write_predictions

log = logging.getLogger(__name__)
ENSEMBLE_FILE = "ensemble.json"
MODES = ("mean", "greedy")
MAX_LISTED = 10


class EnsembleError(ValueError):
    """Members that cannot be combined; the message names the run and the clips."""


@dataclass
class MemberRun:
    path: Path
    label: str                       # short name for tables: the directory name
    head: str
    val: dict[str, np.ndarray]       # canonical id -> (7,)
    test: dict[str, np.ndarray]
    spelled: dict[str, str]          # canonical id -> as written
    metrics: dict


def read_predictions(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or len(rows[0]) != 1 + len(EMOTIONS):
        raise EnsembleError(f"{path}: not a predictions CSV (File_ID + 7 emotion columns)")
    values, spelled = {}, {}
    for row in rows[1:]:
        cid = canonical_id(row[0])
        values[cid] = np.array([float(v) for v in row[1:]], dtype=np.float64)
        spelled[cid] = row[0]
    return values, spelled


def load_member(run: Path) -> MemberRun:
    if not (run / "predictions_val.csv").is_file() or not (run / "metrics.json").is_file():
        raise EnsembleError(f"{run}: not a finished eri-fit run (no predictions_val.csv / metrics.json)")
    val, spelled = read_predictions(run / "predictions_val.csv")
    test: dict[str, np.ndarray] = {}
    if (run / "predictions_test.csv").is_file():
        test, more = read_predictions(run / "predictions_test.csv")
        spelled.update(more)
    metrics = json.loads((run / "metrics.json").read_text())
    return MemberRun(run, run.name, metrics.get("head", "?"), val, test, spelled, metrics)


def check_same_clips(members: list[MemberRun]) -> None:
    first = members[0]
    for m in members[1:]:
        for kind in ("val", "test"):
            a, b = set(getattr(first, kind)), set(getattr(m, kind))
            if a != b:
                only_first, only_m = sorted(a - b), sorted(b - a)
                parts = []
                if only_first:
                    parts.append(f"{len(only_first)} {kind} clip(s) of {first.path} missing in {m.path}: "
                                 + ", ".join(only_first[:MAX_LISTED]) + (" ..." if len(only_first) > MAX_LISTED else ""))
                if only_m:
                    parts.append(f"{len(only_m)} {kind} clip(s) of {m.path} not in {first.path}: "
                                 + ", ".join(only_m[:MAX_LISTED]) + (" ..." if len(only_m) > MAX_LISTED else ""))
                raise EnsembleError("members predict different clips:\n  " + "\n  ".join(parts))


def val_targets(first: MemberRun, ids: list[str], labels: Path | None, partition: Path | None) -> np.ndarray:
    inputs = json.loads((first.path / INPUTS_FILE).read_text()) if (first.path / INPUTS_FILE).is_file() else {}
    cfg = yaml.safe_load((first.path / "config.yaml").read_text()) or {}
    path = labels or (Path(inputs["labels"]) if inputs.get("labels") else None)
    if path is None or not Path(path).is_file():
        raise EnsembleError(f"{first.path}: the labels it was trained with ({path}) are not readable; "
                            f"give --labels (and --partition)")
    part = partition if labels else (partition or (Path(inputs["partition"]) if inputs.get("partition") else None))
    lab = load_labels(path, partition=part, split_column=cfg.get("split_column"),
                      scale=float(cfg.get("label_scale", 1.0)))
    pos = lab.index()
    missing = [c for c in ids if c not in pos]
    if missing:
        raise EnsembleError(f"{path}: {len(missing)} validation clip(s) have no labels: "
                            + ", ".join(missing[:MAX_LISTED]))
    values = lab.values[[pos[c] for c in ids]]
    if np.isnan(values).any():
        raise EnsembleError(f"{path}: some validation clips are unlabelled")
    return values.astype(np.float64)


def greedy_select(preds: list[np.ndarray], true: np.ndarray, labels: list[str]) -> tuple[list[int], list[dict]]:
    """Forward selection without repeats: start from the best member, add the one that
    raises the val mean PCC of the average most, stop when none does."""
    chosen: list[int] = []
    steps: list[dict] = []
    current = -np.inf
    total = np.zeros_like(true)
    while len(chosen) < len(preds):
        trials = {i: score((total + preds[i]) / (len(chosen) + 1), true).mean
                  for i in range(len(preds)) if i not in chosen}
        best = max(trials, key=trials.get)
        if trials[best] <= current + 1e-9:
            break
        chosen.append(best)
        total += preds[best]
        current = trials[best]
        steps.append({"step": len(chosen), "added": labels[best], "val_mean_pcc": current})
    return chosen, steps


def build_ensemble(runs: list[Path], out: Path, mode: str = "mean", labels: Path | None = None,
                   partition: Path | None = None) -> dict:
    """Combine `runs` into `out`; returns the metrics written there."""
    if mode not in MODES:
        raise EnsembleError(f"mode must be one of {MODES}, got {mode!r}")
    if len(runs) < 2:
        raise EnsembleError("an ensemble needs at least two run directories")
    members = [load_member(Path(r)) for r in runs]
    names = _unique_labels(members)
    check_same_clips(members)
    val_ids = sorted(members[0].val)
    test_ids = sorted(members[0].test)
    true = val_targets(members[0], val_ids, labels, partition)
    val = [np.stack([m.val[c] for c in val_ids]) for m in members]
    each = [score(v, true).as_dict() for v in val]
    if mode == "greedy":
        chosen, steps = greedy_select(val, true, names)
        steps = [{**s, "run": str(members[names.index(s["added"])].path)} for s in steps]
    else:
        chosen, steps = list(range(len(members))), []
    val_pred = np.mean([val[i] for i in chosen], axis=0)
    ens = score(val_pred, true).as_dict()
    spelled = {c: s for m in members for c, s in m.spelled.items()}
    out.mkdir(parents=True, exist_ok=True)
    write_predictions(out / "predictions_val.csv", val_ids, val_pred, spelled)
    if test_ids:
        test_pred = np.mean([np.stack([members[i].test[c] for c in test_ids]) for i in chosen], axis=0)
        write_predictions(out / "predictions_test.csv", test_ids, test_pred, spelled)
    counts = Counter(chosen)
    write_json(out / ENSEMBLE_FILE, {"mode": mode, "members": [
        {"run": str(m.path.resolve()), "label": n, "head": m.head, "selected": counts.get(i, 0)}
        for i, (m, n) in enumerate(zip(members, names))]})
    if steps:
        with (out / "selection.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["step", "added", "run", "val_mean_pcc"], lineterminator="\n")
            w.writeheader()
            w.writerows(steps)
    per = np.array([[s["pcc"][e] for e in EMOTIONS] for s in each])
    metrics = {"how": f"{mode} ensemble of {len(chosen)} of {len(members)} run(s)", "head": "ensemble",
               "members": [{"label": n, "run": str(m.path), "head": m.head, "val": s,
                            "selected": counts.get(i, 0)} for i, (m, n, s) in enumerate(zip(members, names, each))],
               "models": [{"name": n, "val": s} for n, s in zip(names, each)],
               "single": {"n_models": len(members), "mean_pcc": float(per.mean(axis=1).mean()),
                          "std_pcc": float(per.mean(axis=1).std()),
                          "pcc_mean": dict(zip(EMOTIONS, per.mean(axis=0).tolist())),
                          "pcc_std": dict(zip(EMOTIONS, per.std(axis=0).tolist()))},
               "ensemble": ens, "selection": steps, "data": {"val": len(val_ids), "test": len(test_ids)}}
    base = members[0].metrics.get("baseline")
    if base:
        metrics["baseline"] = base
        metrics["beats_baseline"] = ens["mean_pcc"] > base["val"]["mean_pcc"]
    write_json(out / "metrics.json", metrics)
    log.info("ensemble of %d run(s) written to %s", len(chosen), out)
    return metrics


def _unique_labels(members: list[MemberRun]) -> list[str]:
    seen: Counter = Counter(m.label for m in members)
    out, used = [], Counter()
    for m in members:
        used[m.label] += 1
        out.append(m.label if seen[m.label] == 1 else f"{m.label}#{used[m.label]}")
    return out


def member_runs(ens_dir: Path) -> list[tuple[Path, int]]:
    """(run dir, weight) of the members an ensemble directory selected (for eri-predict)."""
    meta = json.loads((ens_dir / ENSEMBLE_FILE).read_text())
    return [(Path(m["run"]), int(m["selected"])) for m in meta["members"] if m["selected"]]
