"""ResNet18 (He et al. 2016) with torchvision's parameter names, so torchvision-style checkpoints
(ImageNet, or AffectNet fine-tunes with a 7- or 8-way `fc`) load with strict=True.

Layout (`../shared/reference/torchvision_resnet18.keys.json`, 122 tensors, 11 689 512 parameters
with the 1000-way head): conv1 7x7/2 → bn1 → relu → maxpool 3x3/2 → layer1..layer4 (two BasicBlocks
each, 64/128/256/512 channels, `downsample` = 1x1 conv + BN on the first block of layers 2-4)
→ global average pool → fc. BatchNorm eps 1e-5 (torch default).
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from extract.nets.resnet_layout import FEATURE_DIM, WIDTHS, map_side  # noqa: F401 (re-exported)
from extract.nets.strict import CheckpointMismatch, load_strict

class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + skip)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, WIDTHS[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = WIDTHS[0]
        for i, cout in enumerate(WIDTHS, start=1):
            stride = 1 if i == 1 else 2
            self.add_module(f"layer{i}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(FEATURE_DIM, num_classes)

    def forward_maps(self, x: torch.Tensor, stage: int = 3) -> torch.Tensor:
        """(B, 3, H, W) → (B, C, h, w): the output of `layer{stage}` (stage 3: C = 256, h = w = H/16)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, stage + 1):
            x = getattr(self, f"layer{i}")(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised RGB → (B, 512) globally average-pooled features."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def num_classes_of(state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> int:
    """Rows of `fc.weight`: 1000 for ImageNet, 7 or 8 for AffectNet heads."""
    weight = state_dict.get("fc.weight")
    if weight is None or weight.ndim != 2 or weight.shape[1] != FEATURE_DIM:
        shape = None if weight is None else tuple(weight.shape)
        raise CheckpointMismatch(f"{source}: not a torchvision-style ResNet18 checkpoint "
                                 f"(fc.weight is {shape}, need (num_classes, {FEATURE_DIM}))")
    return int(weight.shape[0])


def resnet18_from_state_dict(state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> ResNet18:
    """Build a ResNet18 whose head size follows the checkpoint and load it strictly (eval mode)."""
    model = ResNet18(num_classes_of(state_dict, source))
    load_strict(model, state_dict, source)
    return model.eval()
