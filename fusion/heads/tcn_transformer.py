"""`tcn_transformer`: per stream a dilated causal TCN (kernel 3, 5 layers) + temporal
positions + transformer encoder + attention pooling; modality dropout at fusion
(whole audio streams dropped with p_m, whole visual streams with p_v, never both for
the same clip), layer norm, MLP, sigmoid.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fusion.heads.blocks import AttentionPool, CausalTCN, SinusoidalPositions, encoder, make_mlp
from fusion.heads.registry import N_OUT, FusionHead, HeadSpec, StreamInfo, register_head


@dataclass(frozen=True)
class TCNTransformerOptions:
    d_model: int = 128
    tcn_layers: int = 5
    tcn_kernel: int = 3
    nhead: int = 4
    layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1
    p_m: float = 0.1   # probability of dropping the audio modality per clip (training only)
    p_v: float = 0.1   # probability of dropping the visual modality per clip (training only)


class StreamEncoder(nn.Module):
    def __init__(self, d_in: int, cfg: TCNTransformerOptions) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, cfg.d_model)
        self.tcn = CausalTCN(cfg.d_model, cfg.tcn_layers, cfg.tcn_kernel, cfg.dropout)
        self.pos = SinusoidalPositions(cfg.d_model)
        self.enc = encoder(cfg.d_model, cfg.nhead, cfg.layers, cfg.d_ff, cfg.dropout)
        self.pool = AttentionPool(cfg.d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.pos(self.tcn(self.inp(x), mask))
        h = self.enc(h, src_key_padding_mask=~mask)
        return self.pool(h, mask)


class TCNTransformerHead(FusionHead):
    def __init__(self, streams: dict[str, StreamInfo], cfg: TCNTransformerOptions) -> None:
        super().__init__(streams, cfg)
        self.enc = nn.ModuleDict({n: StreamEncoder(s.dim, cfg) for n, s in streams.items()})
        d_all = cfg.d_model * len(streams)
        self.norm = nn.LayerNorm(d_all)
        self.fc = make_mlp(d_all, cfg.d_model, N_OUT, cfg.dropout)
        self.audio = [s.modality == "audio" for s in streams.values()]

    def _modality_keep(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        drop_a = torch.rand(batch, device=device) < self.cfg.p_m
        drop_v = torch.rand(batch, device=device) < self.cfg.p_v
        both = drop_a & drop_v
        return ~(drop_a & ~both), ~(drop_v & ~both)

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        vecs = [self.enc[n](x[n], masks[n]) for n in self.names]
        if self.training and len(set(self.audio)) == 2 and (self.cfg.p_m > 0 or self.cfg.p_v > 0):
            keep_a, keep_v = self._modality_keep(vecs[0].shape[0], vecs[0].device)
            vecs = [v * (keep_a if a else keep_v).unsqueeze(1).to(v.dtype)
                    for v, a in zip(vecs, self.audio)]
        return self.fc(self.norm(torch.cat(vecs, dim=1)))


SPEC = register_head(HeadSpec(
    "tcn_transformer", TCNTransformerHead, TCNTransformerOptions,
    "per stream causal TCN(k3 x5) + positions + transformer + attention pool; "
    "modality dropout p_m/p_v; layer norm; MLP"))
