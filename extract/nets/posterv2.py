"""POSTER V2 ("POSTER++", Mao et al. 2023) facial-expression network, with the parameter names,
shapes and state_dict order of the official 7- and 8-class models
(`../shared/reference/posterv2_{7,8}cls.keys.json`: 747 tensors incl. buffers, 58 316 594 parameters).

Data flow (every shape follows from the checkpoint layout):
1. The normalised 224x224 image is nearest-downsampled to 112x112 (every second pixel) and fed to both
   trunks: MobileFaceNet (landmarks) → 64@28², 128@14², 512@7² (+ `last_face_conv` 3x3 → 256@7²);
   IR-50 stages → 64@56², 128@28², 256@14², each reduced by a stride-2 3x3 conv (`conv1..3`) to
   the same grids as the landmark maps.
2. Per scale s (window 28/14/7 = the whole map, heads 2/4/8): `window_s` LayerNorms the image map;
   `attn_s` is cross-attention whose queries are the landmark tokens and whose keys/values come
   from the normed image tokens (`qkv` yields only k and v), with a learned relative-position bias
   ((2w-1)² entries per head, indexed by `relative_position_index`, w² x w²); `ffn_s` adds the normed
   image map as residual (layer-scaled by `gamma1`) and a layer-scaled MLP on top (`gamma2`).
3. Multi-scale fusion into 3x49 tokens of width 768: `embed_q` (two stride-2 3x3 convs, 28→7),
   `embed_k` (one, 14→7), `embed_v` (1x1 conv on 7²).
4. `VIT` (posterv2_vit): class token + 2 blocks + LayerNorm → SE gate → 768-d embedding → `head.linear`.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from extract.nets.posterv2_backbones import IR50Trunk, MobileFaceNet
from extract.nets.posterv2_vit import EMBED_DIM, Mlp, PointEmbed, TokenTransformer
from extract.nets.strict import CheckpointMismatch, load_strict

WINDOWS = (28, 14, 7)
HEADS = (2, 4, 8)
DIMS = (64, 128, 256)
TRUNK_INPUT = 112


def relative_position_index(window: int) -> torch.Tensor:
    """(w², w²) int64: row-major offset (dy + w - 1) * (2w - 1) + (dx + w - 1) between two window cells."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + window - 1
    dx = xs[:, None] - xs[None, :] + window - 1
    return dy * (2 * window - 1) + dx


class LandmarkWindowAttention(nn.Module):
    """Cross-attention over one window: queries = landmark tokens, keys/values = image tokens."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads = heads
        self.window = window
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        if n != self.window ** 2 or query.shape != x.shape:
            raise ValueError(f"window attention expects {self.window}² tokens for image and landmarks, "
                             f"got {tuple(x.shape)} and {tuple(query.shape)}")
        k, v = self.qkv(x).view(b, n, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q = query.reshape(b, n, self.heads, c // self.heads).transpose(1, 2).to(k.dtype)  # one dtype under autocast
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, self.heads).permute(2, 0, 1).unsqueeze(0).to(k.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # scale (c/heads)^-0.5
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class WindowNorm(nn.Module):
    """LayerNorm over channels; returns the normed map (B, H, W, C) and its tokens (B, H*W, C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = self.norm(x.permute(0, 2, 3, 1))
        return normed, normed.flatten(1, 2)


class LayerScaledFeedForward(nn.Module):
    def __init__(self, dim: int, layer_scale: float = 1e-5) -> None:
        super().__init__()
        self.gamma1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.gamma2 = nn.Parameter(torch.full((dim,), layer_scale))
        self.mlp = Mlp(dim, 4 * dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, attended: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        """attended (B, H*W, C), shortcut (B, H, W, C) → (B, C, H, W)."""
        x = shortcut + self.gamma1 * attended.view(shortcut.shape)
        x = x + self.gamma2 * self.mlp(self.norm(x))
        return x.permute(0, 3, 1, 2)


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


class PosterV2(nn.Module):
    def __init__(self, num_classes: int = 7) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.face_landback = MobileFaceNet(136)
        self.VIT = TokenTransformer(num_classes)
        self.ir_back = IR50Trunk()
        for i, (dim, heads, window) in enumerate(zip(DIMS, HEADS, WINDOWS), start=1):
            self.add_module(f"attn{i}", LandmarkWindowAttention(dim, heads, window))
        for i, dim in enumerate(DIMS, start=1):
            self.add_module(f"window{i}", WindowNorm(dim))
        for i, dim in enumerate(DIMS, start=1):
            self.add_module(f"conv{i}", _conv(dim, dim))
        for i, dim in enumerate(DIMS, start=1):
            self.add_module(f"ffn{i}", LayerScaledFeedForward(dim))
        self.last_face_conv = _conv(512, DIMS[2], stride=1)
        self.embed_q = nn.Sequential(_conv(DIMS[0], EMBED_DIM), _conv(EMBED_DIM, EMBED_DIM))
        self.embed_k = nn.Sequential(_conv(DIMS[1], EMBED_DIM))
        self.embed_v = PointEmbed(DIMS[2], EMBED_DIM)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) ImageNet-normalised RGB (224² in the official setup) → (B, 768) embedding."""
        x = F.interpolate(x, size=TRUNK_INPUT, mode="nearest")
        f1, f2, f3 = self.face_landback(x)
        landmarks = (f1, f2, self.last_face_conv(f3))
        image = self.ir_back(x)
        fused = []
        for i, (lm, img) in enumerate(zip(landmarks, image), start=1):
            normed, tokens = getattr(self, f"window{i}")(getattr(self, f"conv{i}")(img))
            attended = getattr(self, f"attn{i}")(tokens, lm.flatten(2).transpose(1, 2))
            fused.append(getattr(self, f"ffn{i}")(attended, normed))
        tokens = torch.cat([self.embed_q(fused[0]).flatten(2).transpose(1, 2),
                            self.embed_k(fused[1]).flatten(2).transpose(1, 2),
                            self.embed_v(fused[2])], dim=1)
        return self.VIT.embed(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.VIT.head(self.forward_features(x))

    def embed_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.forward_features(x)
        return emb, self.VIT.head(emb)


def num_classes_of(state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> int:
    weight = state_dict.get("VIT.head.linear.weight")
    if weight is None or weight.ndim != 2 or weight.shape[1] != EMBED_DIM:
        shape = None if weight is None else tuple(weight.shape)
        raise CheckpointMismatch(f"{source}: not a POSTER V2 checkpoint (VIT.head.linear.weight is {shape}, "
                                 f"need (num_classes, {EMBED_DIM}))")
    return int(weight.shape[0])


def posterv2_from_state_dict(state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> PosterV2:
    """Build POSTER V2 with the checkpoint's head size (7 or 8) and load it strictly (eval mode)."""
    model = PosterV2(num_classes_of(state_dict, source))
    load_strict(model, state_dict, source)
    return model.eval()
