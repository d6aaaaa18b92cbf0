"""Pictures for generated test clips: a real face photograph moving over a background.

The photographs ship with the installed packages (scikit-image's astronaut, matplotlib's
grace_hopper.jpg), so nothing is downloaded. A head-and-shoulders cut-out with a feathered
elliptical edge is warped (scale + translation) onto a generated background for each
frame; the same affine maps the known face box, which gives per-frame ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Portrait:
    name: str
    sprite: tuple[int, int, int, int]  # head-and-shoulders region in the photo, xyxy
    face: tuple[int, int, int, int]    # the face in the photo (brow/hairline to chin, cheek to cheek), xyxy


PORTRAITS = {
    "astronaut": Portrait("astronaut", sprite=(105, 5, 345, 265), face=(178, 80, 272, 186)),
    "hopper": Portrait("hopper", sprite=(100, 10, 430, 405), face=(165, 140, 368, 338)),
}


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """The RGB photograph behind portrait `name` (uint8, read-only)."""
    if name == "astronaut":
        from skimage import data

        image = data.astronaut()
    elif name == "hopper":
        import matplotlib.cbook as cbook
        from PIL import Image

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            image = np.asarray(Image.open(f).convert("RGB"))
    else:
        raise KeyError(f"unknown portrait {name!r}; known: {sorted(PORTRAITS)}")
    image = np.ascontiguousarray(image)
    image.setflags(write=False)
    return image


@lru_cache(maxsize=None)
def cutout(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(rgb float32 (h, w, 3) in [0, 1], alpha float32 (h, w)) of the portrait's sprite region."""
    p = PORTRAITS[name]
    x0, y0, x1, y1 = p.sprite
    rgb = photo(name)[y0:y1, x0:x1].astype(np.float32) / 255.0
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # ellipse slightly wider than the region at the bottom, so shoulders fade out softly
    d = ((xx + 0.5 - w / 2) / (w / 2)) ** 2 + ((yy + 0.5 - h * 0.55) / (h * 0.55)) ** 2
    alpha = np.clip((1.0 - d) / 0.18, 0.0, 1.0)
    return rgb, alpha.astype(np.float32)


def background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A plain room-like backdrop: a vertical gradient, a few soft shapes and fine grain."""
    top, bottom = rng.uniform(0.25, 0.85, 3), rng.uniform(0.1, 0.6, 3)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    bg = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(3):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.15, 0.4) * max(width, height)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        bg = bg * (1 - 0.5 * blob) + 0.5 * blob * rng.uniform(0.2, 0.9, 3)
    bg += rng.normal(0.0, 0.012, bg.shape).astype(np.float32)
    return np.clip(bg, 0.0, 1.0).astype(np.float32)


def sprite_affine(name: str, height_px: float, cx: float, cy: float, mirror: bool = False) -> np.ndarray:
    """2×3 affine taking sprite pixel coords to frame coords: sprite `height_px` tall centred at (cx, cy)."""
    rgb, _ = cutout(name)
    h, w = rgb.shape[:2]
    s = height_px / h
    sx = -s if mirror else s
    return np.array([[sx, 0.0, cx - sx * w / 2], [0.0, s, cy - s * h / 2]], np.float64)


def face_box(name: str, affine: np.ndarray) -> np.ndarray:
    """Ground-truth face box (xyxy, frame pixels) under the sprite affine."""
    p = PORTRAITS[name]
    fx0, fy0, fx1, fy1 = (p.face[0] - p.sprite[0], p.face[1] - p.sprite[1],
                          p.face[2] - p.sprite[0], p.face[3] - p.sprite[1])
    xs = affine[0, 0] * np.array([fx0, fx1]) + affine[0, 2]
    ys = affine[1, 1] * np.array([fy0, fy1]) + affine[1, 2]
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)


def sprite_rgba(name: str, gain: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA float32 of the portrait with colours × `gain` (linear interpolation of
    premultiplied colour leaves no dark fringe at the feathered edge)."""
    rgb, alpha = cutout(name)
    return np.dstack([np.clip(rgb * gain.astype(np.float32), 0.0, 1.0) * alpha[..., None], alpha])


def compose(bg: np.ndarray, rgba: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Frame (uint8 RGB) = background `bg` (float32 [0, 1]) with `rgba` (sprite_rgba) warped by `affine`."""
    import cv2

    h, w = bg.shape[:2]
    # cv2 maps pixel centres; our affine maps continuous coords (pixel i spans [i, i+1))
    m = affine.copy()
    m[:, 2] += m[:, 0] * 0.5 + m[:, 1] * 0.5 - 0.5
    warped = cv2.warpAffine(rgba, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out = bg * (1.0 - warped[..., 3:])
    out += warped[..., :3]
    out *= 255.0
    out += 0.5
    return out.astype(np.uint8)
