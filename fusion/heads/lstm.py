"""`lstm`: the MuSe 2022 baseline shape — linear -> LSTM -> MLP -> sigmoid (CCC or PCC loss
in that baseline; MSE by default here).

Early fusion: the streams are aligned in time and each is projected by its own linear
layer; the projections are summed (= one linear layer on the concatenated features).
The clip vector is the LSTM's final state (both directions when bidirectional).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from fusion.heads.blocks import align, lengths_of, make_mlp
from fusion.heads.frontends import SpatialOptions
from fusion.heads.registry import N_OUT, FusionHead, HeadSpec, StreamInfo, measured_training, register_head


@dataclass(frozen=True)
class LSTMOptions(SpatialOptions):
    d_model: int = 64          # MuSe 2022 baseline --model_dim
    rnn_layers: int = 2
    bidirectional: bool = True
    rnn_dropout: float = 0.2
    d_fc: int = 64             # --d_fc_out
    fc_dropout: float = 0.5    # --linear_dropout


class LSTMHead(FusionHead):
    def __init__(self, streams: dict[str, StreamInfo], cfg: LSTMOptions) -> None:
        super().__init__(streams, cfg)
        self.proj = nn.ModuleDict({n: nn.Linear(self.dims[n], cfg.d_model) for n in self.names})
        self.rnn = nn.LSTM(cfg.d_model, cfg.d_model, cfg.rnn_layers, batch_first=True,
                           bidirectional=cfg.bidirectional,
                           dropout=cfg.rnn_dropout if cfg.rnn_layers > 1 else 0.0)
        dirs = 2 if cfg.bidirectional else 1
        self.fc = make_mlp(cfg.d_model * dirs, cfg.d_fc, N_OUT, cfg.fc_dropout)

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        seqs, mask = align(self.inputs(x), masks, self.names)
        h = sum(self.proj[n](v) for n, v in zip(self.names, seqs))
        if bool(mask.all()):  # equal lengths: no packing (it sorts and copies the batch)
            _, (h_n, _) = self.rnn(h)
        else:
            packed = pack_padded_sequence(h, lengths_of(mask), batch_first=True, enforce_sorted=False)
            _, (h_n, _) = self.rnn(packed)
        dirs = 2 if self.cfg.bidirectional else 1
        last = h_n[-dirs:].transpose(0, 1).reshape(h.shape[0], -1)
        return self.fc(last)


SPEC = register_head(HeadSpec(
    "lstm", LSTMHead, LSTMOptions,
    "linear -> (bi)LSTM -> MLP -> sigmoid; early fusion; MuSe 2022 baseline shape",
    train_defaults=measured_training(lr=3e-3, epochs=25, patience=8),
    size_option="d_model", dropout_options=("rnn_dropout", "fc_dropout")))
