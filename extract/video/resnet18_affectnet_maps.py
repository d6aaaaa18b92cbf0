"""resnet18_affectnet_maps: per-frame ResNet18 feature maps as token sets, for spatial attention.

The dual-branch ERI model's visual input (ABAW5): faces at 112 × 112, the first four convolutional
stages of the AffectNet ResNet18 (conv1 … layer3) give a 256 × 7 × 7 map per frame, flattened to
49 tokens of width 256 (token i = row-major position y·w + x). Same weights entry and preprocessing
as `resnet18_affectnet` (RGB, ImageNet mean/std); cached face crops of another size are resized
(bilinear, anti-aliased) to `input_size` — extract faces with `--face-size 112` to feed the
network the crops unchanged, as the paper does. Options: `input_size` (default 112), `stage`
(1-4: widths 64/128/256/512); the row shape (N, D) follows both (spec.json `item_shape`).
Store it as float16 (`--set resnet18_affectnet_maps.dtype=float16`): (32, 49, 256) per clip is
1.6 MB in float32.
"""
from __future__ import annotations

from dataclasses import dataclass

from extract.specs import BuildOptions, FeatureSpec, OutputShape
from extract.video.resnet18_affectnet import NAME as WEIGHTS
from extract.video.resnet18_affectnet import random_weights

NAME = "resnet18_affectnet_maps"


@dataclass(frozen=True)
class MapsConfig:
    input_size: int = 112
    stage: int = 3  # the output of layer{stage}: 3 = the dual-branch paper's 256 × 7 × 7

    def __post_init__(self) -> None:
        if not isinstance(self.input_size, int) or self.input_size < 32:
            raise ValueError(f"{NAME}: input_size must be at least 32 pixels, got {self.input_size}")
        if self.stage not in (1, 2, 3, 4):
            raise ValueError(f"{NAME}: stage must be 1, 2, 3 or 4 (layer1..layer4), got {self.stage}")

    @property
    def tokens(self) -> int:
        from extract.nets.resnet_layout import map_side

        return map_side(self.input_size, self.stage) ** 2

    @property
    def width(self) -> int:
        from extract.nets.resnet_layout import WIDTHS

        return WIDTHS[self.stage - 1]


def _build(opts: BuildOptions):
    import torch

    from extract.nets.resnet import resnet18_from_state_dict
    from extract.video.backbone import FrozenImageBackbone, prepare_crops
    from extract.weights import load_state_dict

    config = SPEC.resolve_config(opts.config)
    if opts.weights_path is None:
        raise ValueError(f"{NAME} needs the weights entry {WEIGHTS!r} "
                         f"(import a checkpoint with: eri-weights import {WEIGHTS} FILE)")
    model = resnet18_from_state_dict(load_state_dict(opts.weights_path), source=str(opts.weights_path))

    def preprocess(crops, device: str) -> torch.Tensor:
        return prepare_crops(crops, config.input_size, device=device)

    def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = model.forward_maps(x, config.stage)  # (B, C, h, w)
        return {"data": maps.flatten(2).transpose(1, 2)}  # (B, h·w, C), row-major positions

    return FrozenImageBackbone(model, forward, preprocess, {"data": (config.tokens, config.width)},
                               batch_size=opts.batch_size, device=opts.device)


SPEC = FeatureSpec(
    name=NAME,
    modality="video",
    version="1",
    input="faces",
    build=_build,
    shape=lambda config, weights: OutputShape((config.tokens, config.width)),
    config=MapsConfig,
    description=("ResNet18-AffectNet feature maps per frame as token sets: layer3 of 112 px crops = 49 tokens "
                 "× 256 (dual-branch ERI model); options input_size, stage; same weights as resnet18_affectnet"),
    weights=WEIGHTS,
    random_weights=random_weights,
    examples=({"input_size": 224}, {"stage": 4, "input_size": 96}),
)
