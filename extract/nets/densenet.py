"""DenseNet-121 with torchvision's parameter names (shared/reference/torchvision_densenet121.keys.json).

Our own implementation of the published architecture (Huang et al. 2017; growth 32,
blocks 6-12-24-16, bottleneck 4×growth, compression 0.5). Checkpoints load with
`strict=True` in any of three forms:
* torchvision's current names (`...denselayer1.norm1.weight`);
* the legacy names of the released file densenet121-a639ec97.pth (`...denselayer1.norm.1.weight`),
  renamed by `remap_legacy_keys` (what torchvision's own loader does with a regex);
* Keras ImageNet weights converted to this layout (`convert_keras_h5`); Keras' BatchNorm uses
  eps = 1.001e-5, so build the net with `bn_eps=KERAS_BN_EPS` for those.
`embed` returns the 1024-d global average of the final norm+ReLU feature map (Keras' `avg_pool`).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from extract.nets.strict import load_strict

TORCHVISION_BN_EPS = 1e-5
KERAS_BN_EPS = 1.001e-5
_LEGACY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var))$")


class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth: int, bn_size: int, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels, eps=eps)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth, eps=eps)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    """Layer i sees the block input concatenated with the outputs of layers 1..i-1.

    The outputs are written into one preallocated tensor, so the growing input is a view
    instead of a fresh concatenation per layer."""

    def __init__(self, n_layers: int, in_channels: int, growth: int, bn_size: int, eps: float) -> None:
        super().__init__()
        self.in_channels, self.growth = in_channels, growth
        for i in range(n_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(in_channels + i * growth, growth, bn_size, eps)

    @property
    def out_channels(self) -> int:
        return self.in_channels + len(self) * self.growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():  # autograd cannot track writes into a shared buffer
            features = [x]
            for layer in self.values():
                features.append(layer(torch.cat(features, 1)))
            return torch.cat(features, 1)
        out = x.new_empty((x.shape[0], self.out_channels) + tuple(x.shape[2:]))
        out[:, : self.in_channels] = x
        channels = self.in_channels
        for layer in self.values():
            out[:, channels: channels + self.growth] = layer(out[:, :channels])
            channels += self.growth
        return out


class Transition(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, eps: float) -> None:
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(in_channels, eps=eps)),
            ("relu", nn.ReLU(inplace=True)),
            ("conv", nn.Conv2d(in_channels, out_channels, 1, bias=False)),
            ("pool", nn.AvgPool2d(2, stride=2)),
        ]))


class DenseNet(nn.Module):
    def __init__(self, block_config: tuple[int, ...] = (6, 12, 24, 16), growth: int = 32, init_features: int = 64,
                 bn_size: int = 4, num_classes: int = 1000, bn_eps: float = TORCHVISION_BN_EPS) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict([
            ("conv0", nn.Conv2d(3, init_features, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(init_features, eps=bn_eps)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
        ])
        channels = init_features
        for i, n_layers in enumerate(block_config):
            block = DenseBlock(n_layers, channels, growth, bn_size, bn_eps)
            layers[f"denseblock{i + 1}"] = block
            channels = block.out_channels
            if i != len(block_config) - 1:
                layers[f"transition{i + 1}"] = Transition(channels, channels // 2, bn_eps)
                channels //= 2
        layers["norm5"] = nn.BatchNorm2d(channels, eps=bn_eps)
        self.features = nn.Sequential(layers)
        self.classifier = nn.Linear(channels, num_classes)
        self.num_features = channels

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) ImageNet-normalised -> (B, num_features) pooled after the final norm+ReLU."""
        return F.relu(self.features(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def densenet121(bn_eps: float = TORCHVISION_BN_EPS, num_classes: int = 1000) -> DenseNet:
    return DenseNet((6, 12, 24, 16), 32, 64, 4, num_classes, bn_eps)


def remap_legacy_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`...denselayerN.norm.1.weight` -> `...denselayerN.norm1.weight` (released checkpoints);
    other keys pass through unchanged."""
    return {_LEGACY.sub(r"\1\2", key): value for key, value in state.items()}


def load_densenet_state(model: DenseNet, state: dict[str, torch.Tensor], source: str = "checkpoint") -> DenseNet:
    """Strict load that accepts legacy names and checkpoints without `num_batches_tracked`;
    a mismatch raises CheckpointMismatch naming `source`."""
    return load_strict(model, remap_legacy_keys(dict(state)), source)


# Keras applications DenseNet121 layer names -> ours. Keras: conv1/conv, conv1/bn, conv{b}_block{l}_{0,1,2}_...
# (0 = first BN, 1 = bottleneck conv+BN, 2 = 3×3 conv), pool{b}_{bn,conv} (transitions), bn (final), fc1000.
_KERAS_DENSE_LAYER = {("0", "bn"): "norm1", ("1", "conv"): "conv1", ("1", "bn"): "norm2", ("2", "conv"): "conv2"}
_KERAS_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _keras_module_name(layer: str) -> str | None:
    if layer == "conv1/conv":
        return "features.conv0"
    if layer == "conv1/bn":
        return "features.norm0"
    if layer == "bn":
        return "features.norm5"
    if layer == "fc1000":
        return "classifier"
    m = re.fullmatch(r"conv(\d)_block(\d+)_([012])_(bn|conv)", layer)
    if m:
        block, idx, part, kind = int(m[1]) - 1, m[2], m[3], m[4]
        name = _KERAS_DENSE_LAYER.get((part, kind))
        return f"features.denseblock{block}.denselayer{idx}.{name}" if name else None
    m = re.fullmatch(r"pool(\d)_(bn|conv)", layer)
    if m:
        return f"features.transition{int(m[1]) - 1}.{'norm' if m[2] == 'bn' else 'conv'}"
    return None


def convert_keras_h5(path: Path) -> dict[str, torch.Tensor]:
    """Keras DenseNet121 ImageNet weights (.h5) -> a state dict in our (torchvision) layout.

    Kernels go from (kh, kw, in, out) to (out, in, kh, kw); the dense layer from (in, out) to (out, in).
    Load the result into `densenet121(bn_eps=KERAS_BN_EPS)`."""
    import h5py  # only needed for this one-off conversion

    path = Path(path)
    state: dict[str, torch.Tensor] = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in root.attrs:
            raise ValueError(f"{path}: not a Keras weights file (no 'layer_names' attribute)")
        for layer in (_text(n) for n in root.attrs["layer_names"]):
            group = root[layer]
            for weight_name in (_text(n) for n in group.attrs.get("weight_names", [])):
                leaf = weight_name.rsplit("/", 1)[-1].split(":")[0]
                module = _keras_module_name(layer)
                if module is None:
                    raise ValueError(f"{path}: unexpected Keras layer {layer!r} with weights")
                value = torch.from_numpy(group[weight_name][()].astype("float32"))
                if leaf == "kernel":
                    value = value.permute(3, 2, 0, 1) if value.ndim == 4 else value.t()
                    state[f"{module}.weight"] = value.contiguous()
                elif leaf == "bias":
                    state[f"{module}.bias"] = value
                elif leaf in _KERAS_BN:
                    state[f"{module}.{_KERAS_BN[leaf]}"] = value
                else:
                    raise ValueError(f"{path}: unexpected Keras weight {weight_name!r} in layer {layer!r}")
    if not state:
        raise ValueError(f"{path}: no Keras weights found")
    return state


def _text(name) -> str:
    return name.decode("utf8") if isinstance(name, bytes) else str(name)
