"""Real photographs (and warped copies of them) for checking the landmark models and face detectors.

Only numpy, Pillow, OpenCV, scikit-image and matplotlib: the same function runs in the project's
environment and in the side environment that runs the reference implementations
(benchmarks/model_references.py), so both see the same pixels.
"""
from __future__ import annotations

import numpy as np

FACE_IMAGES = ("astronaut", "astronaut_mirror", "astronaut_rot20", "hopper", "hopper_mirror", "hopper_small")
LFW_COUNT = 12  # LFW subset faces, 25x25 grey, upscaled to 100x100 (detectors and dlib only)


def _hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def _rotated(image: np.ndarray, degrees: float, centre: tuple[float, float]) -> np.ndarray:
    import cv2

    m = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def _placed_small(image: np.ndarray) -> np.ndarray:
    """Half size, pasted off-centre into a 640x480 grey frame (a non-square frame with a small person)."""
    import cv2

    small = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 118, np.uint8)
    canvas[150:150 + small.shape[0], 300:300 + small.shape[1]] = small[:480 - 150]
    return canvas


def face_image(name: str) -> np.ndarray:
    """uint8 RGB (H, W, 3) for a name in FACE_IMAGES or "lfw_<k>"."""
    from skimage import data

    if name.startswith("lfw_"):
        import cv2

        grey = (data.lfw_subset()[int(name[4:])] * 255).round().astype(np.uint8)
        return np.repeat(cv2.resize(grey, (100, 100), interpolation=cv2.INTER_CUBIC)[..., None], 3, axis=2)
    base = {"astronaut": data.astronaut, "hopper": _hopper}[name.split("_")[0]]()
    if name.endswith("_mirror"):
        return np.ascontiguousarray(base[:, ::-1])
    if name.endswith("_rot20"):
        return _rotated(base, 20.0, (220.0, 120.0))
    if name.endswith("_small"):
        return _placed_small(base)
    return np.ascontiguousarray(base)


def all_names() -> list[str]:
    return list(FACE_IMAGES) + [f"lfw_{k}" for k in range(LFW_COUNT)]
