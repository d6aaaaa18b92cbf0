"""Frontends: what maps one stream's items to (B, T, D) vectors before any head sees it.

A vector stream (B, T, D) passes unchanged. A token-set stream (B, T, K, D) — K positions of
width D per step, e.g. the 7 x 7 x 256 ResNet18 map of a face (`resnet18_affectnet_maps`) —
goes through a `SpatialEncoder` (Yu et al., CVPRW 2023, §3.1): a learnable positional
embedding p_i per position, a transformer encoder shared by all frames over the K tokens of
each frame, an FC layer with a softmax over the K positions giving weights a_t, and
g_t = sum_i a_{t,i} z_{t,i} -> (B, T, d). Every gradient-trained head gets it for free (its
options dataclass inherits `SpatialOptions`, so `--head-opt spatial_depth=4` works for any of
them); the ridge baseline, which has no weights to learn, takes the mean over tokens instead
(`MeanTokens`). A head that cannot use either sets `FusionHead.token_frontend = None` and
refuses token-set streams by name.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from fusion.heads.blocks import encoder

TOKEN_FRONTENDS = ("spatial", "mean")


@dataclass(frozen=True)
class SpatialOptions:
    """The spatial encoder in front of token-set streams (paper: d = 256, 4 blocks, 4 heads;
    the defaults are smaller to stay fast on CPUs, the `dual_branch_2023` recipe sets the
    paper's)."""
    spatial_d: int = 64
    spatial_depth: int = 1
    spatial_heads: int = 4
    spatial_ff: int = 128
    spatial_dropout: float = 0.1
    # recompute each encoder block's activations in the backward pass instead of keeping them:
    # same gradients, about a third more compute, a fraction of the memory (a batch of 64 clips x 32
    # frames x 49 tokens at d = 256, 4 blocks keeps ~8 GiB otherwise; BENCHMARKS.md)
    spatial_checkpoint: bool = False


def spatial_options(cfg: Any) -> SpatialOptions:
    """The spatial options of a head's options (defaults for what it does not declare)."""
    return SpatialOptions(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(SpatialOptions)
                             if hasattr(cfg, f.name)})


class SpatialEncoder(nn.Module):
    """(B, T, K, D) -> (B, T, d): positions + shared transformer over each frame's tokens +
    softmax-weighted sum over positions."""

    def __init__(self, d_in: int, tokens: int, cfg: SpatialOptions) -> None:
        super().__init__()
        d = cfg.spatial_d
        if d % cfg.spatial_heads:
            raise ValueError(f"spatial_d={d} must be a multiple of spatial_heads={cfg.spatial_heads}")
        self.tokens = tokens
        self.inp = nn.Linear(d_in, d) if d_in != d else nn.Identity()  # paper: D = d = 256, none
        self.pos = nn.Parameter(torch.randn(tokens, d) * 0.02)
        self.enc = (encoder(d, cfg.spatial_heads, cfg.spatial_depth, cfg.spatial_ff, cfg.spatial_dropout)
                    if cfg.spatial_depth > 0 else nn.Identity())  # depth 0: positions + pooling only
        self.score = nn.Linear(d, 1)
        self.out_dim = d
        self.recompute = cfg.spatial_checkpoint

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, K, D) -> z (B*T, K, d)."""
        b, t, k, _ = x.shape
        if k != self.tokens:
            raise ValueError(f"spatial encoder built for {self.tokens} tokens per step, got {k}")
        h = self.inp(x.reshape(b * t, k, -1)) + self.pos
        if not (self.recompute and self.training and torch.is_grad_enabled() and isinstance(self.enc, nn.TransformerEncoder)):
            return self.enc(h)
        for layer in self.enc.layers:
            h = checkpoint(layer, h, use_reentrant=False)
        return h

    def pooling_weights(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, K, d) -> a (N, K): softmax over the K positions of each frame."""
        return torch.softmax(self.score(z).squeeze(-1), dim=-1)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """a (B, T, K) for the input (B, T, K, D)."""
        b, t = x.shape[:2]
        return self.pooling_weights(self.encode(x)).view(b, t, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        z = self.encode(x)
        return torch.einsum("nk,nkd->nd", self.pooling_weights(z), z).view(b, t, -1)


class MeanTokens(nn.Module):
    """(B, T, K, D) -> (B, T, D): the mean over tokens (no weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=2)


def token_frontend(kind: str | None, head: str, stream: str, d_in: int, tokens: int,
                   cfg: Any) -> tuple[nn.Module, int]:
    if kind == "spatial":
        enc = SpatialEncoder(d_in, tokens, spatial_options(cfg))
        return enc, enc.out_dim
    if kind == "mean":
        return MeanTokens(), d_in
    if kind is None:
        raise ValueError(f"head {head!r} cannot take the token-set stream {stream!r} ({tokens} tokens of "
                         f"{d_in} per step); pick a head with a token frontend (e.g. tcn_transformer)")
    raise ValueError(f"unknown token frontend {kind!r}; known: {TOKEN_FRONTENDS}")
