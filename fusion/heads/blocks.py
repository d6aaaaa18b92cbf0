"""Building blocks shared by the heads: masked pooling, positions, alignment, encoders."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, D), (B, T) -> (B, D); mean over the real steps."""
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, D), (B, T) -> (B, D); max over the real steps (0 for a clip with none)."""
    filled = x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), filled, torch.zeros_like(filled))


def masked_std(x: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    mean = masked_mean(x, mask) if mean is None else mean
    return masked_mean((x - mean.unsqueeze(1)) ** 2, mask).clamp_min(1e-8).sqrt()


def pooled_stats(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, 4D): mean, std, max and min over the real steps, per dimension."""
    mean = masked_mean(x, mask)
    return torch.cat([mean, masked_std(x, mask, mean), masked_max(x, mask), -masked_max(-x, mask)], dim=-1)


def padding_mask(mask: torch.Tensor) -> torch.Tensor | None:
    """`key_padding_mask` for attention (True = padding), or None when every step is real:
    a None mask lets torch skip building and applying the additive mask."""
    return None if bool(mask.all()) else ~mask


def lengths_of(mask: torch.Tensor) -> torch.Tensor:
    return mask.sum(dim=1).clamp_min(1).to("cpu", torch.int64)


class AttentionPool(nn.Module):
    """Learned scoring of each step, masked softmax over time, weighted sum."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1))

    def weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) softmax weights over the real steps."""
        s = self.score(x).squeeze(-1).masked_fill(~mask, float("-inf"))
        s = torch.where(mask.any(dim=1, keepdim=True), s, torch.zeros_like(s))
        return torch.softmax(s, dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted sum over time of `values` (default: x itself) with weights scored from x."""
        return torch.einsum("bt,btd->bd", self.weights(x, mask), x if values is None else values)


class SinusoidalPositions(nn.Module):
    """Fixed sine/cosine positions (Vaswani et al.) added to (B, T, D)."""

    def __init__(self, dim: int, max_len: int = 4096) -> None:
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.shape[1]].unsqueeze(0)


def encoder(dim: int, heads: int, layers: int, ff: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, ff, dropout, batch_first=True, activation="gelu")
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def align(x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor],
          names: list[str]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Bring streams of different lengths to the longest T (linear in time) for early
    fusion; the common mask is the AND of the streams' masks, resampled by nearest.
    Padded steps are zeroed first so that their content cannot leak into real steps."""
    steps = max(x[n].shape[1] for n in names)
    out, mask = [], None
    for n in names:
        v, m = x[n] * masks[n].unsqueeze(-1), masks[n]
        if v.shape[1] != steps:
            v = F.interpolate(v.transpose(1, 2), size=steps, mode="linear",
                              align_corners=True).transpose(1, 2)
            m = F.interpolate(m[:, None].float(), size=steps, mode="nearest")[:, 0] > 0.5
        out.append(v)
        mask = m if mask is None else mask & m
    return out, mask


class CausalTCN(nn.Module):
    """Residual stack of dilated causal 1-D convolutions (dilation 1, 2, 4, ...)."""

    def __init__(self, dim: int, layers: int = 5, kernel: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.kernel = kernel
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, kernel, dilation=2 ** i) for i in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x * mask.unsqueeze(-1)
        for conv, norm in zip(self.convs, self.norms):
            pad = (self.kernel - 1) * conv.dilation[0]
            h = conv(F.pad(x.transpose(1, 2), (pad, 0))).transpose(1, 2)
            x = norm(x + self.drop(F.gelu(h)))
        return x * mask.unsqueeze(-1)


def make_mlp(d_in: int, d_hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(d_hidden, d_out))
