"""Which clips train, validate and get predicted.

- Labels with a split (column or partition file): train / val as given; test clips
  (labelled or not) are predicted (and scored when labelled).
- ``folds = K``: the labelled non-test clips are shuffled (by the seed) into K folds;
  each fold in turn is the validation set; scores are the out-of-fold predictions.
- Neither: a random ``val_fraction`` of the labelled clips is held out (seeded). The
  same happens when a split has no val clips (logged).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from fusion.labels import Labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    name: str
    train: list[str]
    val: list[str]


@dataclass(frozen=True)
class Plan:
    folds: list[Fold]
    test: list[str]        # predicted with the ensemble of every model
    how: str               # one line for the summary


def _holdout(ids: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val = min(len(ids) - 2, max(2, int(round(len(ids) * fraction))))
    val = sorted(ids[i] for i in order[:n_val])
    val_set = set(val)
    return [c for c in ids if c not in val_set], val


def plan_splits(labels: Labels, available: list[str], folds: int, val_fraction: float,
                seed: int) -> Plan:
    have = set(available)
    pos = labels.index()
    ids = [c for c in labels.ids if c in have]
    labelled = {c for c in ids if not np.isnan(labels.values[pos[c]]).any()}
    split = {c: (labels.split[pos[c]] if labels.split is not None else None) for c in ids}
    test = [c for c in ids if split[c] == "test" or c not in labelled]
    pool = [c for c in ids if c in labelled and split[c] != "test"]
    if len(pool) < 4:
        raise ValueError(f"only {len(pool)} labelled clips with features to train on; need at least 4")
    if folds >= 2:
        if 2 * folds > len(pool):
            raise ValueError(f"--folds {folds} needs at least {2 * folds} labelled clips, have {len(pool)}")
        order = np.random.default_rng(seed).permutation(len(pool))
        parts = np.array_split(order, folds)
        out = []
        for k, part in enumerate(parts):
            val_set = {pool[i] for i in part}
            out.append(Fold(f"fold-{k + 1}", [c for c in pool if c not in val_set],
                            [c for c in pool if c in val_set]))
        return Plan(out, test, f"{folds}-fold cross-validation over {len(pool)} labelled clips")
    if labels.split is not None:
        train = [c for c in pool if split[c] == "train"]
        val = [c for c in pool if split[c] == "val"]
        if len(val) == 1:
            raise ValueError("the labels' val split has a single clip; Pearson r needs at least 2")
        if val and len(train) >= 2:
            return Plan([Fold("split", train, val)], test, "train/val split from the labels")
        log.warning("labels have no val clips; holding out %.0f%% of train", 100 * val_fraction)
    train, val = _holdout(pool, val_fraction, seed)
    return Plan([Fold("holdout", train, val)], test,
                f"random {100 * val_fraction:.0f}% hold-out (seed {seed}) of {len(pool)} labelled clips")
