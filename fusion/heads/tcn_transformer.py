"""`tcn_transformer`: the dual-branch network of Yu et al., "A Dual Branch Network for
Emotional Reaction Intensity Estimation", CVPR 2023 workshops (ABAW5 ERI, 2nd place).

Per stream (branch) a temporal encoder: linear input projection, a causal dilated TCN
(kernel 3, 5 layers, dilation 1..16), sinusoidal positions and a transformer encoder of
width d = 128, giving a sequence. Modality dropout (the paper's eq. 7) acts on those
sequences while training: with probability p_m both modalities are kept; otherwise exactly
one is zeroed, the video one kept with probability p_v (paper: p_m = 0.9, p_v = 0.5).
The sequences are brought to a common length, concatenated along channels, layer-normed,
mapped by a linear layer to the 7 outputs per step, attention-pooled over time, sigmoid.
With several streams of one modality, they are dropped together.

The paper's visual branch starts from per-frame ResNet18 feature maps (49 tokens of 256 at
112 px, `resnet18_affectnet_maps`): a token-set stream passes the spatial encoder (the
frontend every head has, fusion/heads/frontends.py: positions, transformer over the tokens
of each frame, softmax-weighted sum over positions) before its temporal encoder, so this head
with such a stream *is* the whole dual-branch network; there is no separate `dual_branch`
head, which would be this one again. The `dual_branch_2023` recipe sets the paper's spatial
encoder (d = 256, 4 blocks, 4 heads).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fusion.heads.blocks import AttentionPool, CausalTCN, SinusoidalPositions, align, encoder, padding_mask
from fusion.heads.frontends import SpatialOptions
from fusion.heads.registry import (N_OUT, FusionHead, HeadSpec, Recipe, StreamInfo, measured_training,
                                   register_head, register_recipe)


@dataclass(frozen=True)
class TCNTransformerOptions(SpatialOptions):
    d_model: int = 128
    tcn_layers: int = 5
    tcn_kernel: int = 3
    nhead: int = 4
    layers: int = 1
    d_ff: int = 256
    dropout: float = 0.1
    p_m: float = 0.9   # probability that a training clip keeps both modalities (eq. 7)
    p_v: float = 0.5   # otherwise: probability that the video modality is the one kept


class TemporalEncoder(nn.Module):
    """One branch: (B, T, D) -> (B, T, d)."""

    def __init__(self, d_in: int, cfg: TCNTransformerOptions) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, cfg.d_model)
        self.tcn = CausalTCN(cfg.d_model, cfg.tcn_layers, cfg.tcn_kernel, cfg.dropout)
        self.pos = SinusoidalPositions(cfg.d_model)
        self.enc = encoder(cfg.d_model, cfg.nhead, cfg.layers, cfg.d_ff, cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.pos(self.tcn(self.inp(x), mask))
        return self.enc(h, src_key_padding_mask=padding_mask(mask))


def modality_keep(batch: int, p_m: float, p_v: float, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 7 per clip: (keep audio, keep video), bool (B,). Both with p_m; else exactly one,
    video with p_v."""
    both = torch.rand(batch, generator=generator) < p_m
    video = torch.rand(batch, generator=generator) < p_v
    return both | ~video, both | video


class TCNTransformerHead(FusionHead):
    def __init__(self, streams: dict[str, StreamInfo], cfg: TCNTransformerOptions) -> None:
        super().__init__(streams, cfg)
        self.branch = nn.ModuleDict({n: TemporalEncoder(self.dims[n], cfg) for n in self.names})
        width = cfg.d_model * len(self.names)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, N_OUT)
        self.pool = AttentionPool(width)
        self.is_audio = [streams[n].modality == "audio" for n in self.names]

    def _drop_modalities(self, seqs: list[torch.Tensor]) -> list[torch.Tensor]:
        if not self.training or len(set(self.is_audio)) < 2 or self.cfg.p_m >= 1:
            return seqs
        keep_a, keep_v = modality_keep(seqs[0].shape[0], self.cfg.p_m, self.cfg.p_v)
        return [s * (keep_a if a else keep_v).to(s.dtype)[:, None, None] for s, a in zip(seqs, self.is_audio)]

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.inputs(x)
        seqs = self._drop_modalities([self.branch[n](x[n], masks[n]) for n in self.names])
        seqs, mask = align(dict(zip(self.names, seqs)), masks, self.names)
        h = self.norm(torch.cat(seqs, dim=-1))
        return self.pool(h, mask, values=self.out(h))


SPEC = register_head(HeadSpec(
    "tcn_transformer", TCNTransformerHead, TCNTransformerOptions,
    "per stream causal TCN(k3 x5) + positions + transformer; modality dropout (eq. 7); concat; "
    "layer norm; linear; attention pooling (Yu et al. 2023)",
    paper="Yu et al., A Dual Branch Network for Emotional Reaction Intensity Estimation, CVPRW 2023",
    train_defaults=measured_training(epochs=15, patience=5),
    size_option="d_model", dropout_options=("dropout",)))

register_recipe(Recipe(
    "dual_branch_2023", "tcn_transformer",
    "Yu et al., CVPRW 2023 (arXiv 2303.09210): Adam 1e-4, batch 64, LR halved after 10 epochs "
    "without improvement, MSE",
    settings={"optimizer": "adam", "lr": 1e-4, "batch_size": 64, "schedule": "plateau",
              "lr_patience": 10, "lr_factor": 0.5, "loss": "mse", "epochs": 100, "patience": 20,
              "weight_decay": 0.0, "steps": 32, "eval_batch_size": 64},
    head_options={"d_model": 128, "tcn_layers": 5, "tcn_kernel": 3, "p_m": 0.9, "p_v": 0.5,
                  "spatial_d": 256, "spatial_depth": 4, "spatial_heads": 4, "spatial_ff": 512,
                  "spatial_checkpoint": True},
    notes="epochs and early-stopping patience are not given in the paper: 100 and 20 here; nor is the "
          "spatial encoder's feed-forward width: 2 x d = 512 here; its blocks are recomputed in the backward "
          "pass (same gradients, 1/3 of the memory: BENCHMARKS.md), and evaluation runs in batches of 64 (512 "
          "clips x 32 frames x 49 tokens at d = 256 would hold GiBs at once). The spatial options act on token-set "
          "features (resnet18_affectnet_maps); vector features go straight to their temporal encoder"))
