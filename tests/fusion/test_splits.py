from __future__ import annotations

import numpy as np
import pytest

from fusion.labels import Labels
from fusion.splits import plan_splits


def labels(n, split=None, unlabelled=()):
    vals = np.random.default_rng(0).random((n, 7)).astype(np.float32)
    for i in unlabelled:
        vals[i] = np.nan
    return Labels([f"c{i}" for i in range(n)], vals, split)


def test_split_from_labels_with_test_and_unlabelled():
    lab = labels(8, ["train"] * 4 + ["val"] * 2 + ["test"] * 2, unlabelled=[7])
    plan = plan_splits(lab, lab.ids, folds=0, val_fraction=0.2, seed=0)
    assert plan.folds[0].train == ["c0", "c1", "c2", "c3"] and plan.folds[0].val == ["c4", "c5"]
    assert plan.test == ["c6", "c7"]


def test_clips_without_features_are_left_out():
    lab = labels(8, ["train"] * 4 + ["val"] * 2 + ["test"] * 2)
    plan = plan_splits(lab, ["c0", "c1", "c2", "c4", "c5", "c6"], folds=0, val_fraction=0.2, seed=0)
    assert plan.folds[0].train == ["c0", "c1", "c2"] and plan.test == ["c6"]


def test_holdout_is_seeded_and_disjoint():
    lab = labels(20)
    a = plan_splits(lab, lab.ids, 0, 0.25, seed=3)
    b = plan_splits(lab, lab.ids, 0, 0.25, seed=3)
    assert a == b and len(a.folds[0].val) == 5 and not set(a.folds[0].val) & set(a.folds[0].train)
    assert "hold-out" in a.how


def test_folds_partition_the_pool():
    lab = labels(11, ["train"] * 7 + ["val"] * 3 + ["test"])
    plan = plan_splits(lab, lab.ids, folds=3, val_fraction=0.2, seed=0)
    vals = [c for f in plan.folds for c in f.val]
    assert sorted(vals) == sorted(lab.ids[:10]) and len(set(vals)) == 10
    for f in plan.folds:
        assert not set(f.val) & set(f.train) and len(f.val) + len(f.train) == 10
    with pytest.raises(ValueError, match="--folds 6 needs at least 12"):
        plan_splits(lab, lab.ids, folds=6, val_fraction=0.2, seed=0)


def test_too_few_clips_and_single_val_clip():
    with pytest.raises(ValueError, match="only 3 labelled clips"):
        plan_splits(labels(3), [f"c{i}" for i in range(3)], 0, 0.2, 0)
    lab = labels(6, ["train"] * 5 + ["val"])
    with pytest.raises(ValueError, match="single clip"):
        plan_splits(lab, lab.ids, 0, 0.2, 0)
