"""Exact batched, chunked forward pass of a transformers `Wav2Vec2Model` (for extract/audio/wav2vec2.py).

Every clip's output equals transformers' own forward on that clip alone, unpadded and unchunked
(to float rounding), whatever it is batched with and however it is cut:
- Convolutional feature encoder: clips are cut into pieces of at most `chunk_frames` frames that
  start on frame boundaries and overlap by receptive field − stride samples (80 for the base conv
  stack); pieces of all clips go through it together, zero-padded (padding never reaches a valid
  frame). The GroupNorm after the first conv (feat_extract_norm="group") normalises over a
  whole clip: a clip in one piece is normalised over its own positions in its row, a clip in
  several pieces with statistics computed beforehand for the whole clip.
- Feature projection on all frames at once; transformer on whole clips (self-attention is
  global, so it cannot be chunked exactly), padded batches with a frame attention mask.
Batches hold at most `batch_size` items and BATCH_SECONDS of padded audio (a longer item alone).
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from extract.audio.windows import SAMPLE_RATE, conv_output_length, receptive_field

BATCH_SECONDS = 120.0  # audio per forward pass; memory only, never changes results


class Wav2Vec2Forward:
    """`states`: hidden states to average, numbered 0 (transformer input) … L (last_hidden_state)."""

    def __init__(self, model, states: list[int], chunk_frames: int | None, batch_size: int = 64,
                 device: str = "cpu") -> None:
        cfg = model.config
        self.model, self.states, self.device = model, states, device
        self.chunk_frames, self.batch_size = chunk_frames, max(1, int(batch_size))
        self.kernels, self.strides = list(cfg.conv_kernel), list(cfg.conv_stride)
        self.field, self.hop = receptive_field(self.kernels, self.strides)
        self.last = int(cfg.num_hidden_layers)
        self._lock = threading.Lock()

    def frames(self, samples: int) -> int:
        return conv_output_length(samples, self.kernels, self.strides)

    def __call__(self, clips: list[torch.Tensor]) -> list[np.ndarray]:
        """(T_i, hidden) float32 per clip; every clip must give at least one frame."""
        lengths = [self.frames(x.numel()) for x in clips]
        if min(lengths, default=1) < 1:
            raise ValueError(f"wav2vec2: every clip needs at least {self.field} samples")
        return self._transformer(self._cnn(clips, lengths)) if clips else []

    # ---- convolutional feature encoder: pieces of all clips, batched --------------------------
    def _cnn(self, clips: list, lengths: list[int]) -> list:
        conv_layers = self.model.feature_extractor.conv_layers
        group_norm = isinstance(getattr(conv_layers[0], "layer_norm", None), torch.nn.GroupNorm)
        step = self.chunk_frames or max(lengths, default=1)
        # a clip cut into pieces needs its GroupNorm statistics first; a whole clip gets them in its row
        stats = {i: self._group_norm_stats(clips[i]) for i, t in enumerate(lengths) if t > step and group_norm}
        pieces = [(i, f0, min(f0 + step, t)) for i, t in enumerate(lengths) for f0 in range(0, t, step)]
        pieces.sort(key=lambda p: p[2] - p[1], reverse=True)
        out = [torch.empty(t, conv_layers[-1].conv.out_channels, device=self.device) for t in lengths]
        for batch in self._batches([p[2] - p[1] for p in pieces]):
            group = [pieces[j] for j in batch]
            # the last piece runs to the clip's end: the tail feeds GroupNorm's statistics, not frames
            segments = [clips[i][f0 * self.hop:(f1 - 1) * self.hop + self.field if f1 < lengths[i] else None]
                        for i, f0, f1 in group]
            x = torch.zeros(len(group), max(seg.numel() for seg in segments), device=self.device)
            for row, seg in enumerate(segments):
                x[row, :seg.numel()] = seg
            h = x[:, None]
            for k, layer in enumerate(conv_layers):
                if k == 0 and group_norm:
                    h = layer.conv(h)
                    self._group_norm_rows(h, layer.layer_norm, group, segments, stats)
                    h = layer.activation(h)
                else:
                    h = layer(h)
            h = h.transpose(1, 2)
            for row, (i, f0, f1) in enumerate(group):
                out[i][f0:f1] = h[row, :f1 - f0]
        return out

    def _group_norm_rows(self, h, norm, group, segments, stats) -> None:
        """GroupNorm of a padded batch, in place, row by row: a whole clip over its own positions
        (exactly nn.GroupNorm on the unpadded clip), a piece with its clip's statistics."""
        for row, ((i, _, _), seg) in enumerate(zip(group, segments)):
            if i in stats:
                mean, rstd = stats[i]
                h[row].sub_(mean[:, None]).mul_(rstd[:, None] * norm.weight[:, None]).add_(norm.bias[:, None])
            else:
                valid = conv_output_length(seg.numel(), self.kernels[:1], self.strides[:1])
                h[row, :, :valid] = F.group_norm(h[row:row + 1, :, :valid], norm.num_groups, norm.weight,
                                                 norm.bias, norm.eps)[0]

    def _group_norm_stats(self, x):
        """GroupNorm (mean, 1/std) per channel of the first conv's output over a whole clip, without
        running the conv: its output at t is w_c · x[s·t : s·t + k] + b_c, so mean and variance
        follow from the mean and second moments of the clip's k-sample windows (float64)."""
        layer = self.model.feature_extractor.conv_layers[0]
        conv, norm = layer.conv, layer.layer_norm
        (k,), (s,) = conv.kernel_size, conv.stride
        total = conv_output_length(x.numel(), [k], [s])
        step = max(1, (self.chunk_frames or total) * self.hop // s)
        first = torch.zeros(k, dtype=torch.float64, device=x.device)
        second = torch.zeros(k, k, dtype=torch.float64, device=x.device)
        for p0 in range(0, total, step):
            windows = x[p0 * s:(min(total, p0 + step) - 1) * s + k].double().unfold(0, k, s)
            first += windows.sum(0)
            second += windows.T @ windows
        mu = first / total
        cov = second / total - torch.outer(mu, mu)
        w = conv.weight.double()[:, 0, :]  # (channels, k); the first conv has one input channel
        mean = w @ mu + (conv.bias.double() if conv.bias is not None else 0.0)
        var = ((w @ cov) * w).sum(1)
        per_group = conv.out_channels // norm.num_groups
        group_mean = mean.view(-1, per_group).mean(1)
        group_var = (var + mean.square()).view(-1, per_group).mean(1) - group_mean.square()
        rstd = (group_var.clamp_min(0) + norm.eps).rsqrt()
        return group_mean.repeat_interleave(per_group).float(), rstd.repeat_interleave(per_group).float()

    # ---- projection + transformer: whole clips, batched with an attention mask ------------------
    def _transformer(self, feats: list) -> list[np.ndarray]:
        projected, _ = self.model.feature_projection(torch.cat(feats))
        hidden = list(projected.split([f.shape[0] for f in feats]))
        order = sorted(range(len(hidden)), key=lambda i: hidden[i].shape[0], reverse=True)
        results: list[np.ndarray | None] = [None] * len(hidden)
        for batch in self._batches([hidden[i].shape[0] for i in order]):
            idx = [order[j] for j in batch]
            lengths = torch.tensor([hidden[i].shape[0] for i in idx], device=self.device)
            h = torch.nn.utils.rnn.pad_sequence([hidden[i] for i in idx], batch_first=True)
            mask = None
            if int(lengths.min()) != h.shape[1]:
                mask = torch.arange(h.shape[1], device=self.device)[None] < lengths[:, None]
            states = self._encode(h, mask)
            for row, i in enumerate(idx):
                results[i] = states[row, :int(lengths[row])].float().cpu().numpy()
        return results

    def _encode(self, h, mask):
        """Selected hidden state (mean over the chosen ones) of a padded batch (B, T, dim).
        Intermediate states are caught with hooks on the encoder layers (under a lock: the
        model may be shared by threads)."""
        encoder = self.model.encoder
        last = self.last
        if self.states == [last]:
            return encoder(h, attention_mask=mask).last_hidden_state
        captured: dict[int, Any] = {}

        def keep_input(module, args, kwargs):
            captured[0] = (args[0] if args else kwargs["hidden_states"]).clone()

        def keep_output(k):
            return lambda module, args, out: captured.__setitem__(k, out[0] if isinstance(out, tuple) else out)

        with self._lock:
            hooks = [encoder.layers[k - 1].register_forward_hook(keep_output(k))
                     for k in self.states if 0 < k < last]
            if 0 in self.states:
                hooks.append(encoder.layers[0].register_forward_pre_hook(keep_input, with_kwargs=True))
            try:
                captured[last] = encoder(h, attention_mask=mask).last_hidden_state
            finally:
                for hook in hooks:
                    hook.remove()
        chosen = [captured[k] for k in self.states]
        return chosen[0] if len(chosen) == 1 else sum(chosen) / len(chosen)

    def _batches(self, frames: list[int]) -> list[list[int]]:
        """Greedy batches over items sorted by decreasing length (frames): at most batch_size items
        and BATCH_SECONDS of padded audio each (a longer item runs alone)."""
        budget = BATCH_SECONDS * SAMPLE_RATE / self.hop
        batches: list[list[int]] = []
        for j in range(len(frames)):
            current = batches[-1] if batches else []
            if current and len(current) < self.batch_size and (len(current) + 1) * frames[current[0]] <= budget:
                current.append(j)
            else:
                batches.append([j])
        return batches
