"""Every registered head: (B, 7) in [0, 1], padding content ignored, every stream through its
frontend, options by name. Then per head, the structure its paper describes: tests that fail
when the structure drifts, not only when shapes break."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fusion.heads import HeadSpec, StreamInfo, build_head, get_head, get_recipe, list_heads, register_head
from fusion.heads.lstm import LSTMHead, LSTMOptions
from fusion.heads.tcn_transformer import modality_keep

from fusion_helpers import SMALL_HEADS

HEADS = [h.name for h in list_heads()]
TRAINED = [h.name for h in list_heads() if not h.closed_form]  # learnt by gradient steps
STREAMS = {"aud": StreamInfo(6, 12, "audio"), "vid": StreamInfo(5, 8, "video")}


def inputs(batch=5, seed=0, streams=STREAMS):
    g = torch.Generator().manual_seed(seed)
    x = {k: torch.randn(batch, s.steps, s.dim, generator=g) for k, s in streams.items()}
    lens = {k: torch.randint(1, s.steps + 1, (batch,), generator=g) for k, s in streams.items()}
    for k in lens:
        lens[k][0] = streams[k].steps  # one full-length clip
    m = {k: torch.arange(v.shape[1])[None] < lens[k][:, None] for k, v in x.items()}
    return x, m


def full_masks(x):
    return {k: torch.ones(v.shape[:2], dtype=torch.bool) for k, v in x.items()}


class Calls:
    """Records, in order, which of the named submodules ran (forward hooks)."""

    def __init__(self, net: nn.Module, names: list[str]) -> None:
        self.order: list[str] = []
        self.inputs: dict[str, tuple] = {}
        self.outputs: dict[str, object] = {}
        for name in names:
            net.get_submodule(name).register_forward_hook(self._hook(name))

    def _hook(self, name):
        def hook(module, args, out):
            self.order.append(name)
            self.inputs[name] = args
            self.outputs[name] = out
        return hook


def test_every_head_has_a_small_test_size():
    assert set(HEADS) == set(SMALL_HEADS)


@pytest.mark.parametrize("name", TRAINED)
def test_output_shape_range_and_gradients(name):
    torch.manual_seed(0)
    net = build_head(name, STREAMS, SMALL_HEADS[name])
    x, m = inputs()
    y = net(x, m)
    assert y.shape == (5, 7) and bool(((y >= 0) & (y <= 1)).all())
    logits, class_logits = net.outputs(x, m)
    (logits.sum() + class_logits.sum()).backward()
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


@pytest.mark.parametrize("name", HEADS)
def test_every_stream_goes_through_its_frontend(name):
    """Heads read streams only through `inputs()` (the door for token-set streams)."""
    net = build_head(name, STREAMS, SMALL_HEADS[name]).eval()
    seen = []
    for n in net.names:
        net.frontend[n].register_forward_hook(lambda mod, args, out, _n=n: seen.append(_n))
    x, m = inputs()
    with torch.no_grad():
        net(x, m)
    assert sorted(seen) == sorted(STREAMS)
    assert net.dims == {n: s.dim for n, s in STREAMS.items()}


TOKEN_STREAMS = {"aud": StreamInfo(6, 12, "audio"), "maps": StreamInfo(5, 8, "video", tokens=9)}
SMALL_SPATIAL = {"spatial_d": 8, "spatial_heads": 2, "spatial_ff": 16}


def token_inputs(batch=5, seed=0):
    x, m = inputs(batch, seed, {"aud": TOKEN_STREAMS["aud"], "maps": StreamInfo(9 * 5, 8, "video")})
    x["maps"] = x["maps"].view(batch, 8, 9, 5)
    return x, m


def build_or_refusal(name, streams=TOKEN_STREAMS):
    """The head on a token-set stream, or None when it refuses them with a message naming the stream."""
    opts = {**SMALL_HEADS[name], **(SMALL_SPATIAL if hasattr(get_head(name).make_options(), "spatial_d") else {})}
    try:
        return build_head(name, streams, opts)
    except ValueError as err:
        assert "token-set stream 'maps'" in str(err) and name in str(err), err
        return None


@pytest.mark.parametrize("name", HEADS)
def test_every_head_takes_token_set_streams_or_refuses_them_clearly(name):
    torch.manual_seed(0)
    net = build_or_refusal(name)
    if net is None:
        return
    assert net.dims["aud"] == 6 and not isinstance(net.frontend["maps"], nn.Identity)
    x, m = token_inputs()
    noisy = {"aud": x["aud"], "maps": torch.where(m["maps"][..., None, None], x["maps"], torch.randn_like(x["maps"]) * 100)}
    net.eval()
    with torch.no_grad():
        y = net(x, m)
        torch.testing.assert_close(y, net(noisy, m), rtol=1e-5, atol=1e-5)  # padded frames ignored
    assert y.shape == (5, 7) and bool(((y >= 0) & (y <= 1)).all())
    if get_head(name).closed_form:
        return
    net.train()
    logits, class_logits = net.outputs(x, m)
    (logits.sum() + class_logits.sum()).backward()
    front = list(net.frontend["maps"].parameters())
    assert front and all(p.grad is not None and torch.isfinite(p.grad).all() for p in front)


def test_dual_branch_recipe_is_spatial_encoder_then_tcn_and_transformer_per_branch():
    """Visual branch of Yu et al.: maps -> spatial encoder (d 256, 4 blocks, 4 heads) -> g_t
    (B, T, 256) -> causal TCN -> transformer; audio (MFCC) -> its own TCN -> transformer."""
    recipe = get_recipe("dual_branch_2023")
    assert recipe.head == "tcn_transformer"
    opts = get_head("tcn_transformer").make_options(recipe.head_options)
    assert (opts.spatial_d, opts.spatial_depth, opts.spatial_heads) == (256, 4, 4)
    small = {**SMALL_HEADS["tcn_transformer"], **SMALL_SPATIAL}
    net = build_head("tcn_transformer", TOKEN_STREAMS, small).eval()
    spatial = net.frontend["maps"]
    assert type(spatial).__name__ == "SpatialEncoder" and net.dims["maps"] == 8
    assert isinstance(net.frontend["aud"], nn.Identity)
    calls = Calls(net, ["frontend.maps", "branch.maps.tcn", "branch.maps.enc", "branch.aud.tcn"])
    x, m = token_inputs()
    with torch.no_grad():
        net(x, m)
    assert calls.order.index("frontend.maps") < calls.order.index("branch.maps.tcn") < calls.order.index("branch.maps.enc")
    assert calls.outputs["frontend.maps"].shape == (5, 8, 8)
    full = build_head("tcn_transformer", {"maps": StreamInfo(256, 32, "video", tokens=49)}, recipe.head_options)
    assert len(full.frontend["maps"].enc.layers) == 4 and full.frontend["maps"].pos.shape == (49, 256)


def test_a_head_without_token_frontend_refuses_token_sets_by_name():
    no_tokens = type("NoTokens", (LSTMHead,), {"token_frontend": None})
    no_tokens(STREAMS, LSTMOptions())  # vector streams are fine
    with pytest.raises(ValueError, match=r"cannot take the token-set stream 'maps' \(9 tokens of 5 per step\)"):
        no_tokens(TOKEN_STREAMS, LSTMOptions())


def test_ridge_pools_token_sets_by_their_mean_over_tokens():
    net = build_head("ridge", TOKEN_STREAMS)
    x, m = token_inputs()
    pooled = net.pool(x, m)
    assert pooled.shape == (5, 4 * (6 + 5))
    again = net.pool({"aud": x["aud"], "maps": x["maps"].mean(2, keepdim=True).expand_as(x["maps"])}, m)
    torch.testing.assert_close(pooled, again)


# --- tcn_transformer (Yu et al. 2023) -------------------------------------------------------

def test_modality_dropout_follows_eq7_with_paper_values():
    opts = get_head("tcn_transformer").make_options()
    assert (opts.p_m, opts.p_v) == (0.9, 0.5)
    g = torch.Generator().manual_seed(0)
    keep_a, keep_v = modality_keep(200_000, opts.p_m, opts.p_v, g)
    both, audio_only, video_only = (keep_a & keep_v), (keep_a & ~keep_v), (~keep_a & keep_v)
    assert not bool((~keep_a & ~keep_v).any())        # never both dropped
    assert float(both.float().mean()) == pytest.approx(0.9, abs=0.004)
    assert float(video_only.float().mean()) == pytest.approx(0.05, abs=0.002)
    assert float(audio_only.float().mean()) == pytest.approx(0.05, abs=0.002)
    keep_a, keep_v = modality_keep(200_000, 0.2, 0.8, g)
    assert float((keep_a & keep_v).float().mean()) == pytest.approx(0.2, abs=0.004)
    assert float((~keep_a & keep_v).float().mean()) == pytest.approx(0.8 * 0.8, abs=0.004)


def test_modality_dropout_zeroes_whole_sequences_while_training_only():
    torch.manual_seed(0)
    # p_m = 0: one modality always dropped; p_v = 1: always the video one kept
    opts = {**SMALL_HEADS["tcn_transformer"], "p_m": 0.0, "p_v": 1.0, "dropout": 0.0}
    net = build_head("tcn_transformer", STREAMS, opts)
    calls = Calls(net, ["norm"])
    x, m = full_masks_inputs()
    other = {**x, "aud": torch.randn_like(x["aud"])}
    net.train()
    with torch.no_grad():
        torch.testing.assert_close(net(x, m), net(other, m))   # the audio branch never counts
        d = net.cfg.d_model
        assert float(calls.inputs["norm"][0][..., :d].abs().max()) == 0.0   # audio channels: zeros
        assert float(calls.inputs["norm"][0][..., d:].abs().max()) > 0.0
        net.eval()
        assert not torch.allclose(net(x, m), net(other, m))


def full_masks_inputs():
    x, _ = inputs()
    return x, full_masks(x)


def test_tcn_is_causal():
    torch.manual_seed(0)
    net = build_head("tcn_transformer", STREAMS, SMALL_HEADS["tcn_transformer"]).eval()
    tcn = net.branch["aud"].tcn
    assert len(tcn.convs) == 3 and [c.dilation[0] for c in tcn.convs] == [1, 2, 4]
    assert all(c.kernel_size == (3,) for c in tcn.convs)
    h = torch.randn(2, 12, 32)
    mask = torch.ones(2, 12, dtype=torch.bool)
    changed = h.clone()
    changed[:, 7:] += torch.randn(2, 5, 32)
    with torch.no_grad():
        a, b = tcn(h, mask), tcn(changed, mask)
    torch.testing.assert_close(a[:, :7], b[:, :7])          # the past never sees the future
    assert not torch.allclose(a[:, 7:], b[:, 7:])
    paper = build_head("tcn_transformer", STREAMS).branch["vid"]
    assert len(paper.tcn.convs) == 5 and paper.inp.out_features == 128  # k3 x 5 layers, d = 128


def test_tcn_transformer_fusion_order_concat_norm_linear_attention_pool():
    net = build_head("tcn_transformer", STREAMS, SMALL_HEADS["tcn_transformer"]).eval()
    calls = Calls(net, ["branch.aud.tcn", "branch.aud.enc", "branch.vid.enc", "norm", "out", "pool.score"])
    x, m = inputs()
    with torch.no_grad():
        y = net.logits(x, m)
    order = calls.order
    assert order.index("branch.aud.tcn") < order.index("branch.aud.enc") < order.index("norm")
    assert order.index("norm") < order.index("out") and order.index("norm") < order.index("pool.score")
    d = net.cfg.d_model
    assert net.norm.normalized_shape == (2 * d,) and (net.out.in_features, net.out.out_features) == (2 * d, 7)
    per_step = calls.outputs["out"]                       # (B, T, 7): a linear map per step
    assert per_step.shape[-1] == 7 and per_step.dim() == 3
    w = net.pool.weights(net.norm(calls.inputs["norm"][0]), m["aud"] & m["vid"][:, :1].expand_as(m["aud"]))
    assert w.shape == per_step.shape[:2]
    assert y.shape == (5, 7)


# --- av_interaction (Li et al. 2023) --------------------------------------------------------

def test_av_interaction_widths_3d_and_6d_and_separate_class_layer():
    torch.manual_seed(0)
    net = build_head("av_interaction", STREAMS, SMALL_HEADS["av_interaction"]).eval()
    d = net.cfg.d_model
    calls = Calls(net, ["modality.aud", "modality.vid", "interaction", "proj_cat", "proj_av", "output",
                        "classifier"])
    x, m = inputs()
    with torch.no_grad():
        logits, cls = net.outputs(x, m)
    assert calls.outputs["modality.aud"].shape[-1] == 3 * d and calls.outputs["modality.vid"].shape[-1] == 3 * d
    assert calls.inputs["interaction"][0].shape[-1] == 2 * d     # channel-concatenated embeddings
    assert calls.outputs["interaction"].shape[-1] == 6 * d
    assert net.proj_cat.in_features == 6 * d and net.proj_av.in_features == 6 * d   # g_cat, g_av
    assert net.output.in_features == 2 * d and net.classifier.in_features == 2 * d
    assert net.output is not net.classifier and not torch.allclose(logits, cls)
    torch.testing.assert_close(calls.inputs["output"][0], calls.inputs["classifier"][0])  # same vector
    # the classifier feeds only the class loss: regression logits do not depend on it
    with torch.no_grad():
        net.classifier.weight.add_(1.0)
        torch.testing.assert_close(net.logits(x, m), logits)


def test_av_interaction_encoder_settings_and_recipe():
    recipe = get_recipe("hfut_2023")
    net = build_head("av_interaction", STREAMS, recipe.head_options)
    assert net.cfg.d_model == 256
    aud, inter = net.modality["aud"], net.interaction
    assert aud.mha.num_heads == 2 and aud.mha.dropout == 0.5 and len(aud.enc.layers) == 1
    assert aud.enc.layers[0].self_attn.num_heads == 2 and aud.enc.layers[0].dropout.p == 0.5
    assert inter.mha.num_heads == 8 and inter.mha.dropout == 0.1 and len(inter.enc.layers) == 1
    assert isinstance(net.embed["aud"], nn.Conv1d) and net.embed["aud"].out_channels == 256
    s = recipe.settings
    assert (s["lr"], s["schedule"], s["batch_size"], s["epochs"], s["patience"], s["ema"], s["grad_clip"]) == \
        (1e-4, "constant", 256, 100, 15, 0.99, 0.1)
    assert s["loss"] == "mse+0.01*class" and s["weight_decay"] > 0


# --- cross_attention_rnn ---------------------------------------------------------------------

THREE = {"face": StreamInfo(5, 8, "video"), "pose": StreamInfo(4, 8, "video"), "audio": StreamInfo(6, 12, "audio")}


def test_cross_attention_queries_are_the_current_face_step_and_all_streams_are_attended():
    torch.manual_seed(0)
    opts = {**SMALL_HEADS["cross_attention_rnn"], "rnn_layers": 2}
    net = build_head("cross_attention_rnn", THREE, opts).eval()
    assert net.face == "face" and sorted(net.attend) == sorted(THREE)
    assert all(r.num_layers == 2 for r in net.rnn.values())
    calls = Calls(net, [f"rnn.{n}" for n in THREE] + [f"attend.{n}" for n in THREE] + ["fc.0"])
    x, m = inputs(streams=THREE)
    m = full_masks(x)
    with torch.no_grad():
        net(x, m)
    face_states = calls.outputs["rnn.face"][0]
    for n in THREE:
        q, k, v = calls.inputs[f"attend.{n}"]
        assert q is face_states or torch.equal(q, face_states)        # query: face state at each step
        torch.testing.assert_close(k, calls.outputs[f"rnn.{n}"][0])     # keys: that stream's states
        torch.testing.assert_close(v, k)
    h = net.cfg.hidden
    assert net.fc[0].in_features == h * 4                              # concat(face, 3 attentions)
    fc_in = calls.inputs["fc.0"][0]
    assert fc_in.shape[:2] == face_states.shape[:2]                    # one FC input per face step
    torch.testing.assert_close(fc_in[..., :h], face_states)


def test_cross_attention_any_subset_and_face_choice():
    for subset in (["face"], ["face", "audio"], ["pose", "audio"], ["audio"]):
        streams = {n: THREE[n] for n in subset}
        net = build_head("cross_attention_rnn", streams, SMALL_HEADS["cross_attention_rnn"]).eval()
        x, m = inputs(streams=streams)
        assert net(x, m).shape == (5, 7)
        assert net.fc[0].in_features == net.cfg.hidden * (1 + len(subset))
    net = build_head("cross_attention_rnn", STREAMS, {**SMALL_HEADS["cross_attention_rnn"], "face_feature": "aud"})
    assert net.face == "aud"
    with pytest.raises(ValueError, match="face_feature 'x'"):
        build_head("cross_attention_rnn", STREAMS, {"face_feature": "x"})


# --- te, lstm, conv_pool, ridge ----------------------------------------------------------------

def test_te_is_temporal_cnn_then_transformer_then_fc():
    net = build_head("te", STREAMS, SMALL_HEADS["te"]).eval()
    calls = Calls(net, ["conv", "enc", "fc"])
    x, m = inputs()
    with torch.no_grad():
        net(x, m)
    assert calls.order == ["conv", "enc", "fc"]
    assert isinstance(net.conv, nn.Conv1d) and net.conv.in_channels == 11 and net.conv.kernel_size == (3,)


def test_lstm_is_linear_lstm_fc_sigmoid():
    net = build_head("lstm", STREAMS, SMALL_HEADS["lstm"]).eval()
    calls = Calls(net, ["proj.aud", "proj.vid", "rnn", "fc"])
    x, m = inputs()
    with torch.no_grad():
        torch.testing.assert_close(net(x, m), torch.sigmoid(net.logits(x, m)))
    assert calls.order.index("rnn") > max(calls.order.index("proj.aud"), calls.order.index("proj.vid"))
    assert calls.order[-1] == "fc" and isinstance(net.rnn, nn.LSTM)


def test_conv_pool_detectors_ignore_per_clip_offsets():
    torch.manual_seed(0)
    net = build_head("conv_pool", STREAMS, {**SMALL_HEADS["conv_pool"], "stats": False}).eval()
    x, m = full_masks_inputs()
    shifted = {k: v + torch.randn(v.shape[0], 1, v.shape[2]) * 5 for k, v in x.items()}  # per clip, per dim
    with torch.no_grad():
        torch.testing.assert_close(net(x, m), net(shifted, m), rtol=1e-4, atol=1e-5)
        with_stats = build_head("conv_pool", STREAMS, SMALL_HEADS["conv_pool"]).eval()
        assert not torch.allclose(with_stats(x, m), with_stats(shifted, m))  # levels kept by the stats


def test_ridge_matches_closed_form_and_picks_alpha_on_val():
    from sklearn.linear_model import Ridge
    torch.manual_seed(0)
    net = build_head("ridge", STREAMS, {"alphas": "0.1,10,1000"})
    x, m = inputs(batch=60)
    feats = net.pool(x, m)
    y = torch.rand(60, 7)
    info = net.fit_closed_form(feats[:40], y[:40], feats[40:], y[40:])
    assert info["alpha"] in (0.1, 10, 1000) and info["alpha"] == max(info["scores"], key=info["scores"].get)
    a = ((feats[:40] - feats[:40].mean(0)) / feats[:40].std(0, unbiased=False).clamp_min(1e-8)).double()
    ref = Ridge(alpha=info["alpha"]).fit(a.numpy(), y[:40].double().numpy())
    torch.testing.assert_close(net.weight.double(), torch.from_numpy(ref.coef_.T), rtol=1e-4, atol=1e-5)
    assert feats.shape[1] == 4 * (6 + 5)                 # mean, std, max, min of every dim


def test_options_from_strings_and_errors():
    opts = get_head("lstm").make_options({"d_model": "16", "bidirectional": "false", "fc_dropout": "0.3"})
    assert opts == LSTMOptions(d_model=16, bidirectional=False, fc_dropout=0.3)
    with pytest.raises(ValueError, match="unknown option"):
        get_head("lstm").make_options({"width": 3})
    with pytest.raises(ValueError, match="unknown head 'gru'"):
        get_head("gru")
    with pytest.raises(ValueError, match="registered twice"):
        register_head(HeadSpec("lstm", LSTMHead, LSTMOptions, "dup"))
