"""`av_interaction`: per stream an embedding convolution and a one-layer encoder whose
output is concat(x, MHA(x), transformer(x)); an audio-visual interaction encoder over
all streams' tokens concatenated in time (with a learned stream embedding);
per stream, its own and its interaction tokens are pooled over time (attention pooling
by default, `pooling=mean` for plain averaging), projected, concatenated; FC.

Its paper's training recipe is the head's default (override any of it by flag):
loss mse + 0.01 * class, EMA of weights 0.99 (the evaluated model is the EMA),
gradient clipping 0.1, weight decay 1e-4.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fusion.heads.blocks import AttentionPool, SinusoidalPositions, encoder, make_mlp, masked_mean
from fusion.heads.registry import N_OUT, FusionHead, HeadSpec, StreamInfo, register_head


@dataclass(frozen=True)
class AVInteractionOptions:
    d_model: int = 128
    conv_kernel: int = 3
    nhead: int = 4
    d_ff: int = 256
    interaction_layers: int = 1
    dropout: float = 0.1
    pooling: str = "attention"   # over time, per stream: "attention" or "mean"


class IntraEncoder(nn.Module):
    """Embedding conv, then concat(x, MHA(x), transformer(x)) projected back to d."""

    def __init__(self, d_in: int, cfg: AVInteractionOptions) -> None:
        super().__init__()
        d = cfg.d_model
        self.embed = nn.Conv1d(d_in, d, cfg.conv_kernel, padding=cfg.conv_kernel // 2)
        self.pos = SinusoidalPositions(d)
        self.mha = nn.MultiheadAttention(d, cfg.nhead, dropout=cfg.dropout, batch_first=True)
        self.enc = encoder(d, cfg.nhead, 1, cfg.d_ff, cfg.dropout)
        self.proj = nn.Sequential(nn.Linear(3 * d, d), nn.LayerNorm(d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.pos(self.embed((x * mask.unsqueeze(-1)).transpose(1, 2)).transpose(1, 2))
        att, _ = self.mha(h, h, h, key_padding_mask=~mask, need_weights=False)
        enc = self.enc(h, src_key_padding_mask=~mask)
        return self.proj(torch.cat([h, att, enc], dim=-1))


class AVInteractionHead(FusionHead):
    def __init__(self, streams: dict[str, StreamInfo], cfg: AVInteractionOptions) -> None:
        super().__init__(streams, cfg)
        d = cfg.d_model
        self.intra = nn.ModuleDict({n: IntraEncoder(s.dim, cfg) for n, s in streams.items()})
        self.stream_emb = nn.Parameter(torch.zeros(len(streams), d))
        nn.init.normal_(self.stream_emb, std=0.02)
        self.inter = encoder(d, cfg.nhead, cfg.interaction_layers, cfg.d_ff, cfg.dropout)
        if cfg.pooling not in ("attention", "mean"):
            raise ValueError(f"av_interaction: pooling must be 'attention' or 'mean', got {cfg.pooling!r}")
        self.pool = nn.ModuleDict({f"{n}_{k}": AttentionPool(d) for n in streams for k in ("intra", "inter")}) \
            if cfg.pooling == "attention" else None
        self.proj = nn.ModuleDict({n: nn.Sequential(nn.Linear(2 * d, d), nn.GELU())
                                   for n in streams})
        self.fc = make_mlp(d * len(streams), d, N_OUT, cfg.dropout)

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        intra = [self.intra[n](x[n], masks[n]) + self.stream_emb[i]
                 for i, n in enumerate(self.names)]
        tokens = torch.cat(intra, dim=1)
        mask = torch.cat([masks[n] for n in self.names], dim=1)
        inter = self.inter(tokens, src_key_padding_mask=~mask)
        outs, start = [], 0
        for n, h in zip(self.names, intra):
            stop = start + h.shape[1]
            m = masks[n]
            pooled = torch.cat([self._pool(n, "intra", h, m),
                                self._pool(n, "inter", inter[:, start:stop], m)], dim=-1)
            outs.append(self.proj[n](pooled))
            start = stop
        return self.fc(torch.cat(outs, dim=-1))

    def _pool(self, name: str, kind: str, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pool[f"{name}_{kind}"](h, mask) if self.pool is not None else masked_mean(h, mask)


SPEC = register_head(HeadSpec(
    "av_interaction", AVInteractionHead, AVInteractionOptions,
    "per stream conv + concat(x, MHA, transformer); audio-visual interaction encoder; "
    "projections; FC (+class loss, EMA, clipping by default)",
    train_defaults={"loss": "mse+0.01*class", "ema": 0.99, "grad_clip": 0.1,
                    "weight_decay": 1e-4}))
