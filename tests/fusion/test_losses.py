from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion.losses import batch_pcc, class_loss, parse_loss


def test_parse_weighted_sums():
    e = parse_loss("mse+0.01*class")
    assert e.terms == ((1.0, "mse"), (0.01, "class"))
    assert parse_loss(" 0.5*PCC + 0.5 * ccc ").terms == ((0.5, "pcc"), (0.5, "ccc"))
    assert parse_loss("1e-2*class+mse").terms == ((0.01, "class"), (1.0, "mse"))
    assert str(e) == "mse+0.01*class"
    for bad in ("mae", "mse+", "2**mse", "mse*0.1"):
        with pytest.raises(ValueError, match="bad loss term"):
            parse_loss(bad)


def test_term_values():
    torch.manual_seed(0)
    y = torch.rand(64, 7)
    logits = torch.randn(64, 7)
    assert float(parse_loss("mse")(y, logits, y)) == 0.0
    assert float(parse_loss("pcc")(y, logits, y)) == pytest.approx(0.0, abs=1e-5)
    assert float(parse_loss("ccc")(y, logits, y)) == pytest.approx(0.0, abs=1e-5)
    # CCC penalises a shift that PCC ignores
    assert float(parse_loss("pcc")(y + 0.3, logits, y)) == pytest.approx(0.0, abs=1e-5)
    assert float(parse_loss("ccc")(y + 0.3, logits, y)) > 0.1
    pred = torch.rand(64, 7)
    total = parse_loss("mse+0.01*class")(pred, logits, y)
    assert float(total) == pytest.approx(float(((pred - y) ** 2).mean() + 0.01 * class_loss(pred, logits, y)),
                                         rel=1e-6)


def test_batch_pcc_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.random((30, 7)), rng.random((30, 7))
    ours = batch_pcc(torch.tensor(a), torch.tensor(b)).numpy()
    ref = [np.corrcoef(a[:, k], b[:, k])[0, 1] for k in range(7)]
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_class_term_targets_the_max_emotions():
    y = torch.tensor([[0.2, 1.0, 0.1, 0, 0, 0, 0], [1.0, 0, 0, 0, 0, 0, 1.0], [0.0] * 7])
    right = torch.full((3, 7), -5.0)
    right[0, 1] = 5.0
    right[1, 0] = right[1, 6] = 5.0
    wrong = right.roll(1, dims=1)
    assert float(class_loss(torch.sigmoid(right), right, y)) < float(class_loss(torch.sigmoid(wrong), wrong, y))
    # two maxima: the ideal is half the mass on each
    assert float(class_loss(None, right[1:2], y[1:2])) == pytest.approx(np.log(2), abs=1e-3)
    # all-zero labels are left out
    assert float(class_loss(None, right[2:], y[2:])) == 0.0
