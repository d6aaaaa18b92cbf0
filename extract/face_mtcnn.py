"""MTCNN face detection (Zhang et al., 2016) in our own code, on the nets of extract.nets.mtcnn.

The cascade as published: an image pyramid (smallest face `min_face` px, scale step 0.709) through
P-Net (candidates where face probability ≥ thresholds[0], per-scale NMS at IoU 0.5, then 0.7 over
all scales, box regression, squared), R-Net on 24×24 crops (≥ thresholds[1], NMS 0.7, regression,
squared) and O-Net on 48×48 crops (≥ thresholds[2], five landmarks, regression, NMS 0.7 on
intersection over the smaller box). Resampling is area averaging (the pyramid and the crops) and a
crop keeps only the part of its box inside the picture, as facenet-pytorch does: with these our
boxes equal facenet-pytorch 2.6.0's (BENCHMARKS.md). Images are RGB uint8; boxes come back as (k, 5) x0, y0, x1, y1,
score in pixels (the layout BlazeFace's wrapper returns) and landmarks as (k, 5, 2) x, y: left eye,
right eye (of the image), nose, mouth left, mouth right.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from extract.nets.mtcnn import NETS

STRIDE, CELL = 2, 12  # P-Net's output stride and receptive field


@dataclass(frozen=True)
class MTCNNOptions:
    min_face: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709


def load_mtcnn_nets(paths: dict[str, str | Path]) -> dict[str, torch.nn.Module]:
    """{entry name: checkpoint path} for mtcnn_pnet/rnet/onet → frozen nets (strict loading)."""
    from extract.nets.strict import load_strict
    from extract.weights import load_state_dict

    nets = {}
    for name, cls in NETS.items():
        if name not in paths:
            raise ValueError(f"MTCNN needs the weights entry {name!r} (fetch it with: eri-weights fetch {name})")
        nets[name] = load_strict(cls(), load_state_dict(paths[name]), str(paths[name])).eval().requires_grad_(False)
    return nets


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best first. mode "min": overlap = intersection
    over the smaller box's area (the O-Net stage), else intersection over union."""
    order = np.argsort(-scores, kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        ih = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / np.maximum(denom, 1e-9) <= threshold]
    return np.asarray(keep, np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2:4] = out[:, :2] + side[:, None]
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray, plus_one: bool = True) -> np.ndarray:
    """Apply box regression offsets (fractions of the box side)."""
    w = boxes[:, 2] - boxes[:, 0] + (1 if plus_one else 0)
    h = boxes[:, 3] - boxes[:, 1] + (1 if plus_one else 0)
    out = boxes.copy()
    out[:, :4] = boxes[:, :4] + reg * np.stack([w, h, w, h], axis=1)
    return out


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125


class MTCNN:
    """Reusable detector: nets loaded once, applied to one image at a time."""

    def __init__(self, nets: dict[str, torch.nn.Module], options: MTCNNOptions | None = None) -> None:
        self.pnet, self.rnet, self.onet = nets["mtcnn_pnet"], nets["mtcnn_rnet"], nets["mtcnn_onet"]
        self.options = options or MTCNNOptions()

    @classmethod
    def from_paths(cls, paths: dict[str, str | Path], options: MTCNNOptions | None = None) -> "MTCNN":
        return cls(load_mtcnn_nets(paths), options)

    def scales(self, height: int, width: int) -> list[float]:
        m = CELL / self.options.min_face
        side, out = min(height, width) * m, []
        while side >= CELL:
            out.append(m * self.options.factor ** len(out))
            side *= self.options.factor
        return out

    @torch.inference_mode()
    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(boxes (k, 5) x0, y0, x1, y1, score; landmarks (k, 5, 2)) for one RGB uint8 image."""
        img = torch.from_numpy(np.array(image, np.float32)).permute(2, 0, 1)[None]
        boxes = self._proposals(img)
        if len(boxes):
            boxes = self._refine(img, boxes)
        if not len(boxes):
            return np.zeros((0, 5), np.float64), np.zeros((0, 5, 2), np.float64)
        return self._output(img, boxes)

    def _proposals(self, img: torch.Tensor) -> np.ndarray:
        h, w = img.shape[2:]
        found = []
        for scale in self.scales(h, w):
            level = F.interpolate(img, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
            reg, prob = self.pnet(_normalise(level))
            prob, reg = prob[0].numpy(), reg[0].numpy()
            rows, cols = np.nonzero(prob >= self.options.thresholds[0])
            if not len(rows):
                continue
            x0 = np.floor((STRIDE * cols + 1) / scale)
            y0 = np.floor((STRIDE * rows + 1) / scale)
            x1 = np.floor((STRIDE * cols + CELL) / scale)
            y1 = np.floor((STRIDE * rows + CELL) / scale)
            cand = np.stack([x0, y0, x1, y1, prob[rows, cols], *reg[:, rows, cols]], axis=1)
            found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5))
        cand = np.concatenate(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        return _square(_regress(cand[:, :5], cand[:, 5:9], plus_one=False))

    @staticmethod
    def _crops(img: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
        """The part of each (truncated, 1-based inclusive) box inside the picture, area-resized to
        size×size (as facenet-pytorch crops; the boxes are squares, so only border faces stretch)."""
        h, w = img.shape[2:]
        crops = []
        for x0, y0, x1, y1 in np.trunc(boxes[:, :4]).astype(np.int64):
            x0, y0, x1, y1 = max(x0, 1), max(y0, 1), min(x1, w), min(y1, h)
            patch = img[:, :, y0 - 1:max(y1, y0), x0 - 1:max(x1, x0)]
            crops.append(F.interpolate(patch, size=(size, size), mode="area"))
        return _normalise(torch.cat(crops))

    def _refine(self, img: torch.Tensor, boxes: np.ndarray) -> np.ndarray:
        reg, prob = self.rnet(self._crops(img, boxes, 24))
        keep = prob.numpy() > self.options.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], prob.numpy()[keep, None]], axis=1)
        reg = reg.numpy()[keep]
        order = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[order], reg[order]))

    def _output(self, img: torch.Tensor, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reg, points, prob = self.onet(self._crops(img, boxes, 48))
        keep = prob.numpy() > self.options.thresholds[2]
        boxes = np.concatenate([boxes[keep, :4], prob.numpy()[keep, None]], axis=1)
        reg, points = reg.numpy()[keep], points.numpy()[keep]
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        landmarks = np.stack([bw * points[:, :5] + boxes[:, :1] - 1, bh * points[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes = _regress(boxes, reg)
        order = nms(boxes[:, :4], boxes[:, 4], 0.7, mode="min")
        return boxes[order].astype(np.float64), landmarks[order].astype(np.float64)
