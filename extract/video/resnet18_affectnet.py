"""resnet18_affectnet: ResNet18 (torchvision layout) fine-tuned for facial expressions, on cached face crops.

Per frame: `data` = the 512-d globally average-pooled feature (the input of `fc`); extra `logits` =
the `fc` outputs (class count read from the checkpoint's `fc.weight`: 7 or 8 for AffectNet heads,
1000 for a plain ImageNet checkpoint; the declared `extras` dim, 8, is AffectNet-8's).
Input: RGB crops resized (bilinear, anti-aliased) to `input_size` (default 224), [0,1], ImageNet mean/std.
Checkpoints fine-tuned on 112x112 faces (common for AffectNet crops) should be run with
`input_size=112`: the network is fully convolutional up to the global pool, so only the numbers change.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from extract.specs import BuildOptions, FeatureSpec, OutputShape
from extract.weights.header import tensor_shape

NAME = "resnet18_affectnet"
FEATURE_DIM = 512
DEFAULT_INPUT_SIZE = 224
DECLARED_CLASSES = 8  # AffectNet-8; the real count follows the checkpoint


@dataclass(frozen=True)
class ResNet18Config:
    input_size: int = DEFAULT_INPUT_SIZE  # crops are resized to this (112 for 112 px checkpoints)

    def __post_init__(self) -> None:
        if not isinstance(self.input_size, int) or self.input_size < 32:
            raise ValueError(f"{NAME}: input_size must be at least 32 pixels, got {self.input_size}")


def _build(opts: BuildOptions):
    import torch

    from extract.nets.resnet import resnet18_from_state_dict
    from extract.video.backbone import FrozenImageBackbone, prepare_crops

    size = SPEC.resolve_config(opts.config).input_size
    if opts.weights_path is None:
        raise ValueError(f"{NAME} needs the weights entry {NAME!r} "
                         f"(import a checkpoint with: eri-weights import {NAME} FILE)")
    from extract.weights import load_state_dict

    model = resnet18_from_state_dict(load_state_dict(opts.weights_path), source=str(opts.weights_path))

    def preprocess(crops, device: str) -> torch.Tensor:
        return prepare_crops(crops, size, device=device)

    def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = model.forward_features(x)
        return {"data": features, "logits": model.fc(features)}

    return FrozenImageBackbone(model, forward, preprocess, {"data": FEATURE_DIM, "logits": model.fc.out_features},
                               batch_size=opts.batch_size, device=opts.device)


def shape(config: ResNet18Config, weights: dict[str, str]) -> OutputShape:
    fc = tensor_shape(weights.get(NAME), "fc.weight")
    return OutputShape((FEATURE_DIM,), None, {"logits": fc[0] if fc else DECLARED_CLASSES})


def random_weights(root: Path, config) -> None:
    """A random-initialised ResNet18 in torchvision's layout with an AffectNet-8 head."""
    from extract.nets.resnet import ResNet18
    from extract.weights.state_dict import write_random_checkpoint

    write_random_checkpoint(root, NAME, lambda: ResNet18(DECLARED_CLASSES))


SPEC = FeatureSpec(
    name=NAME,
    modality="video",
    version="1",
    input="faces",
    build=_build,
    shape=shape,
    config=ResNet18Config,
    examples=({"input_size": 112},),
    description=("ResNet18 (torchvision layout) fine-tuned on AffectNet; 224x224 RGB face crops, ImageNet "
                 "mean/std; data = 512-d global-average-pooled features (input of fc); extras logits = "
                 "fc outputs (7 or 8 classes, from the checkpoint). Option input_size=112 for 112 px checkpoints."),
    weights=NAME,
    random_weights=random_weights,
)
