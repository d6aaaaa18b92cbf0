"""Token-set features (T, K, D) in the trainer: loaded as float16 and widened per batch, length
policies along T, per-channel statistics over steps and tokens on training rows only; the
spatial encoder's pooling (weights sum to 1; learns a rule mean pooling over tokens cannot)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from feature_store import FeatureStore, fingerprint_of
from fusion.data import DataPolicy, Normalizer, load_fusion_data, make_batch
from fusion.heads.blocks import masked_mean
from fusion.heads.frontends import MeanTokens, SpatialEncoder, SpatialOptions
from fusion.lengths import resample, to_fixed_length

K, D = 6, 5


def write_tokens(root, name, clips, dtype="float16"):
    spec = {"name": name, "dim": D, "item_shape": [K, D], "dtype": dtype, "modality": "video"}
    fd = FeatureStore(root).feature_dir(name, fingerprint_of(spec), spec=spec)
    with fd.open_shard() as w:
        for cid, x in clips.items():
            w.add(cid, x, np.arange(len(x)) * 0.1)


@pytest.fixture
def maps(tmp_path):
    rng = np.random.default_rng(0)
    clips = {f"c{i}": (rng.normal(3, 2, (4 + i, K, D)) * np.arange(1, D + 1)).astype(np.float32)
             for i in range(7)}
    write_tokens(tmp_path, "maps", clips)
    write_tokens(tmp_path, "maps32", clips, dtype="float32")
    return FeatureStore(tmp_path), {c: x.astype(np.float16) for c, x in clips.items()}


def test_token_sets_resample_and_pad_along_time_only():
    x = np.arange(8 * 2 * 3, dtype=np.float32).reshape(8, 2, 3)
    out = resample(x, 4)
    assert out.shape == (4, 2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, (x[0::2] + x[1::2]) / 2)  # segment means, each token and channel alike
    up = resample(x[:3].astype(np.float16), 5)
    assert up.dtype == np.float16 and up.shape == (5, 2, 3)
    np.testing.assert_allclose(up[1].astype(np.float32), (x[0] + x[1]) / 2)
    data, mask = to_fixed_length([x[:2], None], 4, "pad", (2, 3), dtype=np.float16)
    assert data.shape == (2, 4, 2, 3) and data.dtype == np.float16
    assert mask.tolist() == [[True, True, False, False], [True] * 4]
    assert (data[0, 2:] == 0).all() and (data[0, :2] == x[:2]).all()


def test_float16_token_sets_stay_float16_in_memory_and_batches_are_float32(maps):
    fs, clips = maps
    ids = [f"c{i}" for i in range(7)]
    d = load_fusion_data(fs, ["maps"], ids, DataPolicy(steps=5, length="pad"))
    b = d.blocks["maps"]
    assert b.data.dtype == torch.float16 and b.data.shape == (7, 5, K, D) and b.tokens == K
    assert d.streams()["maps"].tokens == K and d.streams()["maps"].dim == D
    assert b.describe()["tokens"] == K
    assert b.mask.sum(1).tolist() == [4, 5, 5, 5, 5, 5, 5]
    np.testing.assert_array_equal(b.data[0, :4].numpy(), clips["c0"])
    f32 = load_fusion_data(fs, ["maps32"], ids, DataPolicy(steps=5)).blocks["maps32"]
    assert f32.data.dtype == torch.float32 and "tokens" in f32.describe()
    norm = Normalizer.fit(d, torch.arange(7))
    x, m = make_batch(d, norm, torch.tensor([0, 3]))
    assert x["maps"].dtype == torch.float32 and x["maps"].shape == (2, 5, K, D)
    assert (x["maps"][0, 4:] == 0).all()              # the padded step of c0 stays 0
    assert b.data.dtype == torch.float16              # the store copy is not widened in place


def test_normaliser_is_per_channel_over_steps_and_tokens_of_training_rows_only(maps, monkeypatch):
    fs, clips = maps
    ids = [f"c{i}" for i in range(7)]
    d = load_fusion_data(fs, ["maps"], ids, DataPolicy(steps=6, length="pad"))
    train = torch.tensor([1, 2, 5])
    monkeypatch.setattr("fusion.data.STAT_CHUNK", 2 * 6 * K * D)  # two clips per chunk: chunks must add up
    norm = Normalizer.fit(d, train)
    real = np.concatenate([clips[ids[i]][:6].astype(np.float64).reshape(-1, D) for i in train.tolist()])
    np.testing.assert_allclose(norm.mean["maps"].numpy(), real.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.std["maps"].numpy(), real.std(0), rtol=1e-4)
    x, m = make_batch(d, norm, train)
    z = x["maps"][m["maps"]].numpy().reshape(-1, D)     # real steps only (c1 is padded)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-3)


def test_pooling_weights_sum_to_one_over_positions():
    enc = SpatialEncoder(D, K, SpatialOptions(spatial_d=8, spatial_heads=2, spatial_ff=16)).eval()
    x = torch.randn(3, 4, K, D) * 5
    a = enc.weights(x)
    assert a.shape == (3, 4, K) and bool((a >= 0).all())
    torch.testing.assert_close(a.sum(-1), torch.ones(3, 4))
    assert enc(x).shape == (3, 4, 8)
    z = enc.encode(x).view(3, 4, K, 8)
    torch.testing.assert_close(enc(x), torch.einsum("btk,btkd->btd", a, z))  # g_t = sum_i a_ti z_ti


def position_rule(n: int, seed: int, tokens: int = 16, steps: int = 2, dim: int = 4, where: int = 11):
    """Tokens i.i.d. N(0, 1); the label is channel 0 of token `where`, averaged over steps: the
    mean over tokens holds it only diluted 1:tokens (best PCC from the mean ~ 1/sqrt(tokens))."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, steps, tokens, dim, generator=g)
    return x, x[:, :, where, 0].mean(1, keepdim=True)


class Probe(nn.Module):
    def __init__(self, front: nn.Module, width: int) -> None:
        super().__init__()
        self.front = front
        self.fc = nn.Sequential(nn.Linear(width, 32), nn.GELU(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.front(x)
        return self.fc(masked_mean(g, torch.ones(g.shape[:2], dtype=torch.bool)))


def train_probe(front: nn.Module, width: int, steps: int = 400) -> float:
    torch.manual_seed(0)
    net = Probe(front, width)
    x, y = position_rule(2048, seed=1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(2)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = ((net(x[idx]) - y[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, yt = position_rule(512, seed=3)
    with torch.no_grad():
        pred = net.eval()(xt)
    return float(torch.corrcoef(torch.stack([pred[:, 0], yt[:, 0]]))[0, 1])


@pytest.mark.parametrize("depth", [0, 1])
def test_spatial_encoder_learns_a_position_rule_that_mean_pooling_cannot(depth):
    """Same probe, data and budget; only the token pooling differs. With depth 0 (no transformer)
    only the positional pooling weights can find the token, so a degenerate (uniform) pooling fails."""
    torch.set_num_threads(1)
    opts = SpatialOptions(spatial_d=16, spatial_depth=depth, spatial_heads=2, spatial_ff=32, spatial_dropout=0.0)
    enc = SpatialEncoder(4, 16, opts)
    spatial = train_probe(enc, 16)
    mean = train_probe(MeanTokens(), 4)
    assert mean < 0.45, mean          # bounded by ~1/sqrt(16) = 0.25 plus noise
    assert spatial > 0.85, (spatial, mean)
    if depth == 0:
        with torch.no_grad():
            a = enc.eval().weights(position_rule(64, seed=4)[0])
        assert float(a[..., 11].mean()) > 0.5   # the weight went to the labelled position


def test_recomputed_encoder_blocks_give_the_same_outputs_and_gradients():
    opts = dict(spatial_d=8, spatial_depth=2, spatial_heads=2, spatial_ff=16, spatial_dropout=0.1)
    plain = SpatialEncoder(D, K, SpatialOptions(**opts))
    recomputed = SpatialEncoder(D, K, SpatialOptions(**opts, spatial_checkpoint=True))
    recomputed.load_state_dict(plain.state_dict())
    x = torch.randn(3, 4, K, D)
    grads = []
    for enc in (plain, recomputed):
        torch.manual_seed(5)  # the same dropout masks (recomputation replays the RNG state)
        out = enc.train()(x)
        out.square().sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in enc.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b)
