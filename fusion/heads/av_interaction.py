"""`av_interaction`: the audio-visual interaction transformer of Li et al., "Multimodal
Feature Extraction and Fusion for Emotional Reaction Intensity Estimation and Expression
Classification in Videos with Transformers", CVPR 2023 workshops (HFUT, ABAW5 ERI winner).

- Per modality (stream) a 1-D convolution embeds the features to d (paper: 256); its
  encoder outputs concat(x, MHA(x), transformer(x)) = 3d per step (depth 1, 2 heads,
  dropout 0.5).
- The interaction encoder runs on the channel-concatenation of the streams' embeddings
  (2d for two streams; the streams are first brought to a common length) and outputs
  concat(x, MHA(x), transformer(x)) = 6d (depth 1, 8 heads, dropout 0.1).
- Pooled over time: g_cat = concat(g_a, g_v) (6d) and g_av (6d) are each projected to d,
  concatenated (2d) and passed to the output layer (7 intensities); a separate
  classification layer on the same 2d vector gives the logits of the class loss
  (loss mse + 0.01 * class, i.e. alpha = 1, beta = 0.01).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fusion.heads.blocks import AttentionPool, SinusoidalPositions, align, encoder, masked_mean, padding_mask
from fusion.heads.frontends import SpatialOptions
from fusion.heads.registry import (N_OUT, FusionHead, HeadSpec, Recipe, StreamInfo, measured_training,
                                   register_head, register_recipe)


@dataclass(frozen=True)
class AVInteractionOptions(SpatialOptions):
    d_model: int = 128
    conv_kernel: int = 3
    modality_heads: int = 2
    modality_layers: int = 1
    modality_dropout: float = 0.5
    interaction_heads: int = 8
    interaction_layers: int = 1
    interaction_dropout: float = 0.1
    ff_mult: int = 2              # transformer feed-forward width = ff_mult x its input width
    pooling: str = "mean"         # over time: "mean" or "attention"


class TripleEncoder(nn.Module):
    """(B, T, w) -> concat(x, MHA(x), transformer(x)): (B, T, 3w)."""

    def __init__(self, width: int, heads: int, layers: int, dropout: float, ff_mult: int) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.enc = encoder(width, heads, layers, ff_mult * width, dropout)
        self.out_dim = 3 * width

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pad = padding_mask(mask)
        att, _ = self.mha(x, x, x, key_padding_mask=pad, need_weights=False)
        return torch.cat([x, att, self.enc(x, src_key_padding_mask=pad)], dim=-1)


class AVInteractionHead(FusionHead):
    def __init__(self, streams: dict[str, StreamInfo], cfg: AVInteractionOptions) -> None:
        super().__init__(streams, cfg)
        if cfg.pooling not in ("attention", "mean"):
            raise ValueError(f"av_interaction: pooling must be 'attention' or 'mean', got {cfg.pooling!r}")
        d, k = cfg.d_model, cfg.conv_kernel
        self.embed = nn.ModuleDict({n: nn.Conv1d(self.dims[n], d, k, padding=k // 2) for n in self.names})
        self.pos = SinusoidalPositions(d)
        self.modality = nn.ModuleDict({n: TripleEncoder(d, cfg.modality_heads, cfg.modality_layers,
                                                        cfg.modality_dropout, cfg.ff_mult)
                                       for n in self.names})
        self.interaction = TripleEncoder(d * len(self.names), cfg.interaction_heads, cfg.interaction_layers,
                                         cfg.interaction_dropout, cfg.ff_mult)
        cat_dim = sum(m.out_dim for m in self.modality.values())
        self.proj_cat = nn.Linear(cat_dim, d)
        self.proj_av = nn.Linear(self.interaction.out_dim, d)
        self.output = nn.Linear(2 * d, N_OUT)
        self.classifier = nn.Linear(2 * d, N_OUT)
        widths = {**{n: m.out_dim for n, m in self.modality.items()}, "_av": self.interaction.out_dim}
        self.pool = nn.ModuleDict({n: AttentionPool(w) for n, w in widths.items()}) \
            if cfg.pooling == "attention" else None

    def _pool(self, key: str, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pool[key](h, mask) if self.pool is not None else masked_mean(h, mask)

    def fused(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        """The 2d vector both output layers read."""
        x = self.inputs(x)
        emb = {n: self.pos(self.embed[n]((x[n] * masks[n].unsqueeze(-1)).transpose(1, 2)).transpose(1, 2))
               for n in self.names}
        g = [self._pool(n, self.modality[n](emb[n], masks[n]), masks[n]) for n in self.names]
        seqs, mask = align(emb, masks, self.names)
        g_av = self._pool("_av", self.interaction(torch.cat(seqs, dim=-1), mask), mask)
        return torch.cat([self.proj_cat(torch.cat(g, dim=-1)), self.proj_av(g_av)], dim=-1)

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.output(self.fused(x, masks))

    def outputs(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fused(x, masks)
        return self.output(h), self.classifier(h)


SPEC = register_head(HeadSpec(
    "av_interaction", AVInteractionHead, AVInteractionOptions,
    "per stream conv embedding + concat(x, MHA, transformer) (3d); interaction encoder on the "
    "concatenated embeddings (6d); projections; output layer + separate class layer (Li et al. 2023)",
    paper="Li et al., Multimodal Feature Extraction and Fusion for Emotional Reaction Intensity "
          "Estimation and Expression Classification in Videos with Transformers, CVPRW 2023",
    train_defaults=measured_training(epochs=15, patience=5, loss="mse+0.01*class"),
    size_option="d_model", dropout_options=("interaction_dropout",)))

register_recipe(Recipe(
    "hfut_2023", "av_interaction",
    "Li et al., CVPRW 2023 (arXiv 2303.09164): Adam 1e-4 fixed, batch 256, 100 epochs, early stop "
    "15, EMA 0.99, gradient clipping 0.1 (L2 norm), L2 penalty, loss MSE + 0.01 class",
    settings={"optimizer": "adam", "lr": 1e-4, "schedule": "constant", "batch_size": 256, "epochs": 100,
              "patience": 15, "ema": 0.99, "grad_clip": 0.1, "weight_decay": 1e-4,
              "loss": "mse+0.01*class", "steps": 32},
    head_options={"d_model": 256, "modality_heads": 2, "modality_layers": 1, "modality_dropout": 0.5,
                  "interaction_heads": 8, "interaction_layers": 1, "interaction_dropout": 0.1},
    notes="the L2 penalty's weight is not given in the paper: 1e-4 here (Adam weight_decay)"))
