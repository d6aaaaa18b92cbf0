"""The challenge metric equals scipy.stats.pearsonr, edge cases included."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from fusion.labels import EMOTIONS
from fusion.metrics import pearson_columns, score


def scipy_r(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([stats.pearsonr(x[:, k], y[:, k]).statistic for k in range(x.shape[1])])


@pytest.mark.parametrize("n", [3, 10, 1000])
def test_matches_scipy_random(n):
    rng = np.random.default_rng(n)
    x = rng.random((n, 7))
    y = 0.5 * x + rng.random((n, 7))
    np.testing.assert_allclose(pearson_columns(x, y), scipy_r(x, y), rtol=0, atol=1e-14)


def test_matches_scipy_edge_cases():
    rng = np.random.default_rng(0)
    base = rng.random((50, 1))
    cols = {
        "perfect": (base, base),
        "anti": (base, -base),
        "constant_pred": (np.full_like(base, 0.3), base),
        "constant_true": (base, np.zeros_like(base)),
        "huge_values": (base * 1e200, base * 1e200 + 1e199 * rng.random((50, 1))),
        "tiny_values": (base * 1e-200, base),
        "offset": (base + 1e6, base),
        "nan_in_pred": (np.where(np.arange(50)[:, None] == 3, np.nan, base), base),
    }
    for name, (x, y) in cols.items():
        ours, ref = pearson_columns(x, y), scipy_r(x, y)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12, equal_nan=True, err_msg=name)
    assert np.isnan(pearson_columns(*cols["constant_pred"]))[0]


def test_two_points_give_exact_one_and_too_few_points_raise():
    x = np.array([[0.1, 0.2], [0.4, 0.1]])
    y = np.array([[0.3, 0.3], [0.9, 0.5]])
    np.testing.assert_array_equal(pearson_columns(x, y), scipy_r(x, y))
    np.testing.assert_array_equal(pearson_columns(x, y), [1.0, -1.0])
    with pytest.raises(ValueError, match="at least 2"):
        pearson_columns(x[:1], y[:1])


def test_float32_input_computed_in_float64():
    rng = np.random.default_rng(1)
    x = rng.random((200, 7)).astype(np.float32)
    y = rng.random((200, 7)).astype(np.float32)
    np.testing.assert_allclose(pearson_columns(x, y), scipy_r(x.astype(np.float64), y.astype(np.float64)),
                               atol=1e-14)


def test_score_counts_undefined_r_as_zero_and_reports_it():
    rng = np.random.default_rng(2)
    y = rng.random((40, 7))
    pred = y.copy()
    pred[:, 2] = 0.5  # constant column
    sc = score(pred, y)
    assert sc.per_emotion["anxiety"] == 0.0 and np.isnan(sc.raw[2])
    assert sc.mean == pytest.approx(6 / 7)
    assert sc.as_dict()["undefined"] == ["anxiety"]
    assert list(sc.per_emotion) == list(EMOTIONS)
