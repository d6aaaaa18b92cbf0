"""`te`: a temporal encoder — 1-D convolution over time of the (time-aligned, concatenated)
features, temporal positions, transformer encoder, masked mean over time, FC; trained
with MSE (default) or PCC loss."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fusion.heads.blocks import SinusoidalPositions, align, encoder, make_mlp, masked_mean, padding_mask
from fusion.heads.frontends import SpatialOptions
from fusion.heads.registry import N_OUT, FusionHead, HeadSpec, StreamInfo, measured_training, register_head


@dataclass(frozen=True)
class TEOptions(SpatialOptions):
    d_model: int = 128
    conv_kernel: int = 3
    nhead: int = 4
    layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1


class TEHead(FusionHead):
    def __init__(self, streams: dict[str, StreamInfo], cfg: TEOptions) -> None:
        super().__init__(streams, cfg)
        d_in = sum(self.dims.values())
        self.conv = nn.Conv1d(d_in, cfg.d_model, cfg.conv_kernel, padding=cfg.conv_kernel // 2)
        self.pos = SinusoidalPositions(cfg.d_model)
        self.enc = encoder(cfg.d_model, cfg.nhead, cfg.layers, cfg.d_ff, cfg.dropout)
        self.fc = make_mlp(cfg.d_model, cfg.d_model // 2, N_OUT, cfg.dropout)

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        seqs, mask = align(self.inputs(x), masks, self.names)
        h = torch.cat(seqs, dim=-1) * mask.unsqueeze(-1)
        h = self.pos(self.conv(h.transpose(1, 2)).transpose(1, 2))
        h = self.enc(h, src_key_padding_mask=padding_mask(mask))
        return self.fc(masked_mean(h, mask))


SPEC = register_head(HeadSpec(
    "te", TEHead, TEOptions,
    "1-D conv over concatenated features + positions + transformer encoder + FC",
    train_defaults=measured_training(epochs=25, patience=8),
    size_option="d_model", dropout_options=("dropout",)))
