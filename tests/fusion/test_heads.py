"""Every registered head: (B, 7) in [0, 1], padding content ignored, options by name."""
from __future__ import annotations

import pytest
import torch

from fusion.heads import HeadSpec, StreamInfo, build_head, get_head, list_heads, register_head
from fusion.heads.lstm import LSTMHead, LSTMOptions

from fusion_helpers import SMALL_HEADS

HEADS = [h.name for h in list_heads()]
TRAINED = [h.name for h in list_heads() if not h.closed_form]  # learnt by gradient steps
STREAMS = {"aud": StreamInfo(6, 12, "audio"), "vid": StreamInfo(5, 8, "video")}


def inputs(batch=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {"aud": torch.randn(batch, 12, 6, generator=g), "vid": torch.randn(batch, 8, 5, generator=g)}
    lens = {"aud": torch.tensor([12, 7, 3, 1, 12])[:batch], "vid": torch.tensor([8, 8, 2, 5, 1])[:batch]}
    m = {k: torch.arange(v.shape[1])[None] < lens[k][:, None] for k, v in x.items()}
    return x, m


def test_every_head_has_a_small_test_size():
    assert set(HEADS) == set(SMALL_HEADS)


@pytest.mark.parametrize("name", TRAINED)
def test_output_shape_range_and_gradients(name):
    torch.manual_seed(0)
    net = build_head(name, STREAMS, SMALL_HEADS[name])
    x, m = inputs()
    y = net(x, m)
    assert y.shape == (5, 7) and bool(((y >= 0) & (y <= 1)).all())
    net.logits(x, m).sum().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", HEADS)
def test_padding_content_is_ignored(name):
    torch.manual_seed(0)
    net = build_head(name, STREAMS, SMALL_HEADS[name]).eval()
    x, m = inputs()
    noisy = {k: torch.where(m[k][..., None], v, torch.randn_like(v) * 100) for k, v in x.items()}
    with torch.no_grad():
        torch.testing.assert_close(net(x, m), net(noisy, m), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", HEADS)
def test_single_stream_and_batch_independence(name):
    torch.manual_seed(0)
    net = build_head(name, {"vid": STREAMS["vid"]}, SMALL_HEADS[name]).eval()
    x, m = inputs()
    x, m = {"vid": x["vid"]}, {"vid": m["vid"]}
    with torch.no_grad():
        full = net(x, m)
        one = net({"vid": x["vid"][1:2]}, {"vid": m["vid"][1:2]})
    torch.testing.assert_close(full[1:2], one, rtol=1e-5, atol=1e-5)


def test_modality_dropout_only_while_training():
    torch.manual_seed(0)
    opts = {**SMALL_HEADS["tcn_transformer"], "p_m": 0.5, "p_v": 0.5, "dropout": 0.0}
    net = build_head("tcn_transformer", STREAMS, opts)
    x, m = inputs()
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x, m), net(x, m))
        net.train()
        outs = {tuple(net(x, m)[0].tolist()) for _ in range(12)}
    assert len(outs) > 1


def test_cross_attention_face_stream_choice():
    net = build_head("cross_attention_rnn", STREAMS, SMALL_HEADS["cross_attention_rnn"])
    assert net.face == "vid" and net.others == ["aud"]
    net = build_head("cross_attention_rnn", STREAMS, {**SMALL_HEADS["cross_attention_rnn"], "face_feature": "aud"})
    assert net.face == "aud"
    with pytest.raises(ValueError, match="face_feature 'x'"):
        build_head("cross_attention_rnn", STREAMS, {"face_feature": "x"})


def test_options_from_strings_and_errors():
    opts = get_head("lstm").make_options({"d_model": "16", "bidirectional": "false", "fc_dropout": "0.3"})
    assert opts == LSTMOptions(d_model=16, bidirectional=False, fc_dropout=0.3)
    with pytest.raises(ValueError, match="unknown option"):
        get_head("lstm").make_options({"width": 3})
    with pytest.raises(ValueError, match="unknown head 'gru'"):
        get_head("gru")
    with pytest.raises(ValueError, match="registered twice"):
        register_head(HeadSpec("lstm", LSTMHead, LSTMOptions, "dup"))
    assert get_head("av_interaction").train_defaults["ema"] == 0.99
