"""The two convolutional trunks of POSTER V2, both run on 112x112 input.

* `IR50Trunk` (`ir_back.*`): the first three stages of the ArcFace IR-50 (3, 4 and 14 "IR" bottlenecks,
  64/128/256 channels), returning the three stage outputs (56², 28², 14²). The IR-50's 512-channel
  stage is absent; its `output_layer` (BN → dropout → flatten → Linear(25088, 512) → BN1d) is in the
  official checkpoints but never used, so it is kept for strict loading and not called.
* `MobileFaceNet` (`face_landback.*`): the facial-landmark network (136 = 68 (x, y) outputs) whose
  intermediate maps (64@28², 128@14², 512@7²) are the landmark queries. Its GDC `output_layer` only
  produces the discarded landmark vector, so `forward` skips it (same outputs, less work).

All BatchNorm eps are the torch default 1e-5; all PReLUs are per channel.
"""
from __future__ import annotations

import torch
from torch import nn


class IRBottleneck(nn.Module):
    """BN → 3x3 conv → PReLU → 3x3 conv (stride) → BN, plus a shortcut (strided identity, or 1x1 conv + BN)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        if cin != cout:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                                nn.BatchNorm2d(cout))
        else:
            self.shortcut_layer = None
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the parameter-free shortcut is a 1x1 max-pool with stride, i.e. plain subsampling
        skip = x[:, :, ::self.stride, ::self.stride] if self.shortcut_layer is None else self.shortcut_layer(x)
        return self.res_layer(x) + skip


def _stage(cin: int, cout: int, units: int) -> nn.Sequential:
    return nn.Sequential(IRBottleneck(cin, cout, 2), *(IRBottleneck(cout, cout, 1) for _ in range(units - 1)))


class IR50Trunk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(0.0), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512))  # unused
        self.body1 = _stage(64, 64, 3)
        self.body2 = _stage(64, 128, 4)
        self.body3 = _stage(128, 256, 14)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x1 = self.body1(self.input_layer(x))
        x2 = self.body2(x1)
        return x1, x2, self.body3(x2)


class ConvBlock(nn.Module):
    """conv (no bias) → BN → optional PReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=1 if kernel == 3 else 0,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class DepthWise(nn.Module):
    """Inverted bottleneck: 1x1 expand (PReLU) → 3x3 depthwise (PReLU) → 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, hidden: int, stride: int, residual: bool = False) -> None:
        super().__init__()
        self.residual = residual
        self.conv = ConvBlock(cin, hidden)
        self.conv_dw = ConvBlock(hidden, hidden, kernel=3, stride=stride, groups=hidden)
        self.project = ConvBlock(hidden, cout, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.conv_dw(self.conv(x)))
        return x + out if self.residual else out


class Residual(nn.Module):
    def __init__(self, channels: int, blocks: int, hidden: int) -> None:
        super().__init__()
        self.model = nn.Sequential(*(DepthWise(channels, channels, hidden, 1, residual=True) for _ in range(blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class GDCHead(nn.Module):
    """Global depthwise 7x7 conv → Linear(512, 136) → BN1d: the landmark regressor (kept for loading)."""

    def __init__(self, outputs: int = 136) -> None:
        super().__init__()
        self.conv_6_dw = ConvBlock(512, 512, kernel=7, groups=512, act=False)
        self.linear = nn.Linear(512, outputs, bias=False)
        self.bn = nn.BatchNorm1d(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(torch.flatten(self.conv_6_dw(x), 1)))


class MobileFaceNet(nn.Module):
    def __init__(self, landmarks: int = 136) -> None:
        super().__init__()
        self.conv1 = ConvBlock(3, 64, kernel=3, stride=2)
        self.conv2_dw = ConvBlock(64, 64, kernel=3, groups=64)
        self.conv_23 = DepthWise(64, 64, 128, stride=2)
        self.conv_3 = Residual(64, 4, 128)
        self.conv_34 = DepthWise(64, 128, 256, stride=2)
        self.conv_4 = Residual(128, 6, 256)
        self.conv_45 = DepthWise(128, 128, 512, stride=2)
        self.conv_5 = Residual(128, 2, 256)
        self.conv_6_sep = ConvBlock(128, 512)
        self.output_layer = GDCHead(landmarks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3, 112, 112) → (64@28², 128@14², 512@7²); the landmark head is not evaluated."""
        f1 = self.conv_3(self.conv_23(self.conv2_dw(self.conv1(x))))
        f2 = self.conv_4(self.conv_34(f1))
        f3 = self.conv_6_sep(self.conv_5(self.conv_45(f2)))
        return f1, f2, f3
