"""`cross_attention_rnn`: per stream a 2-layer GRU; every other stream is attended to
from the face stream (query = face step, keys/values = that stream's steps); the face
states and the attended sequences are concatenated per face step, averaged over the
clip (clip-level output) and mapped by an FC to the 7 intensities.

The face stream is the option `face_feature`, by default the first visual stream
(the first stream if none is visual).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fusion.heads.blocks import lengths_of, make_mlp, masked_mean
from fusion.heads.registry import N_OUT, FusionHead, HeadSpec, StreamInfo, register_head


@dataclass(frozen=True)
class CrossAttentionRNNOptions:
    hidden: int = 128
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
        self.inp = nn.ModuleDict({n: nn.Linear(s.dim, h) for n, s in streams.items()})
        self.rnn = nn.ModuleDict({n: nn.GRU(h, h, cfg.rnn_layers, batch_first=True,
                                            dropout=cfg.dropout if cfg.rnn_layers > 1 else 0.0)
                                  for n in streams})
        self.others = [n for n in self.names if n != self.face]
        self.cross = nn.ModuleDict({n: nn.MultiheadAttention(h, cfg.nhead, dropout=cfg.dropout,
                                                             batch_first=True)
                                    for n in self.others})
        self.fc = make_mlp(h * len(streams), h, N_OUT, cfg.dropout)

    def _run_rnn(self, name: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.inp[name](x), lengths_of(mask), batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.rnn[name](packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        states = {n: self._run_rnn(n, x[n], masks[n]) for n in self.names}
        face, fmask = states[self.face], masks[self.face]
        parts = [face]
        for n in self.others:
            att, _ = self.cross[n](face, states[n], states[n], key_padding_mask=~masks[n],
                                   need_weights=False)
            parts.append(att)
        return self.fc(masked_mean(torch.cat(parts, dim=-1), fmask))


SPEC = register_head(HeadSpec(
    "cross_attention_rnn", CrossAttentionRNNHead, CrossAttentionRNNOptions,
    "per stream 2-layer GRU; cross-attention of each stream from the face stream; "
    "concat; mean over the clip; FC"))
