"""Shared runner for frozen image backbones on cached face crops.

Frames of many clips are concatenated, run in batches of `batch_size` under
`torch.inference_mode` (fp16 autocast on CUDA) and split back per clip.
A backbone module supplies the network and a `forward` that maps a normalised
(B, C, H, W) float tensor to {"data": (B, dim), <extra>: (B, k)}.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from extract.specs import FeatureOutput

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's normalisation of [0, 1] RGB
IMAGENET_STD = (0.229, 0.224, 0.225)


def prepare_crops(crops: np.ndarray, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                  grayscale: bool = False, device: str = "cpu") -> torch.Tensor:
    """uint8 (B, S, S, 3) RGB → normalised float (B, C, size, size) on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if grayscale:
        # ITU-R BT.601 luma, as OpenCV's RGB2GRAY
        x = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    m = torch.tensor(mean, device=device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


class FrozenImageBackbone:
    """Batches face crops of many clips through `forward` and splits the results."""

    def __init__(self, model: torch.nn.Module, forward: Callable[[torch.Tensor], dict[str, torch.Tensor]],
                 preprocess: Callable[[np.ndarray, str], torch.Tensor], widths: dict[str, int | tuple[int, ...]],
                 batch_size: int = 64, device: str = "cpu") -> None:
        """widths: {"data": D or a row shape such as (N, D), <extra>: k} — the rows `forward` returns
        (needed for clips without frames)."""
        self.model = model.eval().requires_grad_(False).to(device)
        self.widths = dict(widths)
        self.forward = forward
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.device = device

    def run(self, crops: list[np.ndarray], times: list[np.ndarray]) -> list[FeatureOutput]:
        counts = [len(c) for c in crops]
        outputs: dict[str, list[np.ndarray]] = {}
        if sum(counts):
            frames = np.concatenate([c for c in crops if len(c)], axis=0)
            for start in range(0, len(frames), self.batch_size):
                for key, value in self._run_batch(frames[start:start + self.batch_size]).items():
                    outputs.setdefault(key, []).append(value)
        merged = {k: np.concatenate(v, axis=0) for k, v in outputs.items()} or \
            {k: np.zeros((0, *np.atleast_1d(w)), np.float32) for k, w in self.widths.items()}
        return self._split(merged, counts, times)

    def _run_batch(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        x = self.preprocess(frames, self.device)
        use_fp16 = self.device.startswith("cuda")
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=use_fp16):
            out = self.forward(x)
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    @staticmethod
    def _split(merged: dict[str, np.ndarray], counts: list[int], times: list[np.ndarray]) -> list[FeatureOutput]:
        results, start = [], 0
        for n, t in zip(counts, times):
            part = {k: v[start:start + n].astype(np.float32) for k, v in merged.items()}
            start += n
            data = part.pop("data")
            results.append(FeatureOutput(data=data, times=np.asarray(t, np.float64), extras=part))
        return results
