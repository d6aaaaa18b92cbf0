"""`cross_attention_rnn`: attention fusion of per-stream RNNs around the face stream.

The paper's setting is three streams (face, pose, audio; any subset may be present), each
encoded by its own 2-layer RNN (a GRU here). At every face step the query is the current
face state; every stream's sequence (the face stream's own included) is attended with it,
and concat(current face state, one attention result per stream) goes through an FC to 7
outputs per face step, which are averaged over the clip's real face steps.

The face stream is the option `face_feature`, by default the first visual stream (the
first stream if none is visual).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fusion.heads.blocks import lengths_of, make_mlp, masked_mean, padding_mask
from fusion.heads.frontends import SpatialOptions
from fusion.heads.registry import N_OUT, FusionHead, HeadSpec, StreamInfo, measured_training, register_head


@dataclass(frozen=True)
class CrossAttentionRNNOptions(SpatialOptions):
    hidden: int = 64           # measured: 128 was 2x slower and no better (BENCHMARKS.md)
    rnn_layers: int = 2
    nhead: int = 4
    dropout: float = 0.2
    face_feature: str = ""   # empty = first visual stream


class CrossAttentionRNNHead(FusionHead):
    def __init__(self, streams: dict[str, StreamInfo], cfg: CrossAttentionRNNOptions) -> None:
        super().__init__(streams, cfg)
        if cfg.face_feature and cfg.face_feature not in streams:
            raise ValueError(f"face_feature {cfg.face_feature!r} is not among the features "
                             f"{list(streams)}")
        visual = [n for n, s in streams.items() if s.modality == "video"]
        self.face = cfg.face_feature or (visual[0] if visual else self.names[0])
        h = cfg.hidden
        self.inp = nn.ModuleDict({n: nn.Linear(self.dims[n], h) for n in self.names})
        self.rnn = nn.ModuleDict({n: nn.GRU(h, h, cfg.rnn_layers, batch_first=True,
                                            dropout=cfg.dropout if cfg.rnn_layers > 1 else 0.0)
                                  for n in self.names})
        self.attend = nn.ModuleDict({n: nn.MultiheadAttention(h, cfg.nhead, dropout=cfg.dropout,
                                                              batch_first=True)
                                     for n in self.names})
        self.fc = make_mlp(h * (1 + len(self.names)), h, N_OUT, cfg.dropout)

    def _run_rnn(self, name: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.inp[name](x)
        if bool(mask.all()):  # equal lengths: no packing (it sorts and copies the batch)
            return self.rnn[name](h)[0]
        packed = pack_padded_sequence(h, lengths_of(mask), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn[name](packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.inputs(x)
        states = {n: self._run_rnn(n, x[n], masks[n]) for n in self.names}
        query = states[self.face]                        # (B, T_face, h): the current face step
        parts = [query]
        for n in self.names:
            att, _ = self.attend[n](query, states[n], states[n], key_padding_mask=padding_mask(masks[n]),
                                    need_weights=False)
            parts.append(att)
        per_step = self.fc(torch.cat(parts, dim=-1))     # (B, T_face, 7)
        return masked_mean(per_step, masks[self.face])


SPEC = register_head(HeadSpec(
    "cross_attention_rnn", CrossAttentionRNNHead, CrossAttentionRNNOptions,
    "per stream 2-layer GRU; at each face step the face state attends to every stream; "
    "concat(face, attentions) -> FC per step; mean over the clip",
    paper="attention fusion of face, pose and audio RNNs (ABAW5 ERI); structure only, its training "
          "settings are not recorded here",
    train_defaults=measured_training(epochs=25, patience=8),
    size_option="hidden", dropout_options=("dropout",)))
