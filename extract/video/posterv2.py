"""posterv2: POSTER V2 facial-expression network (official 7- or 8-class checkpoints), on cached face crops.

Per frame: `data` = the 768-d penultimate embedding, i.e. the SE-gated class token that feeds
`VIT.head.linear`; extra `logits` = the head's outputs (7 or 8, read from the checkpoint; the declared
`extras` dim, 7, is that of the RAF-DB / AffectNet-7 / CAER-S releases). Class order is the sorted
folder names of the dataset the checkpoint was trained on (the official code does not fix it).
Input as in the official evaluation: RGB resized to 224x224 (bilinear; cached 224 px crops are used
as they are), [0,1], ImageNet mean/std; inside the network both trunks see the nearest-neighbour
112x112 version (every second pixel).
"""
from __future__ import annotations

from pathlib import Path

from extract.specs import BuildOptions, FeatureSpec, NoOptions, OutputShape
from extract.weights.header import tensor_shape

NAME = "posterv2"
FEATURE_DIM = 768
INPUT_SIZE = 224
DECLARED_CLASSES = 7


def _build(opts: BuildOptions):
    import torch

    from extract.nets.posterv2 import posterv2_from_state_dict
    from extract.video.backbone import FrozenImageBackbone, prepare_crops

    if opts.weights_path is None:
        raise ValueError(f"{NAME} needs the weights entry {NAME!r} "
                         f"(import an official checkpoint with: eri-weights import {NAME} FILE)")
    from extract.weights import load_state_dict

    model = posterv2_from_state_dict(load_state_dict(opts.weights_path), source=str(opts.weights_path))

    def preprocess(crops, device: str) -> torch.Tensor:
        return prepare_crops(crops, INPUT_SIZE, device=device)

    def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
        embedding, logits = model.embed_and_logits(x)
        return {"data": embedding, "logits": logits}

    widths = {"data": FEATURE_DIM, "logits": model.VIT.head.linear.out_features}
    return FrozenImageBackbone(model, forward, preprocess, widths,
                               batch_size=opts.batch_size, device=opts.device)


def shape(config: NoOptions, weights: dict[str, str]) -> OutputShape:
    head = tensor_shape(weights.get(NAME), "VIT.head.linear.weight")
    return OutputShape((FEATURE_DIM,), None, {"logits": head[0] if head else DECLARED_CLASSES})


def random_weights(root: Path, config) -> None:
    """A random-initialised POSTER V2 (official parameter names, 7 classes)."""
    from extract.nets.posterv2 import PosterV2
    from extract.weights.state_dict import write_random_checkpoint

    write_random_checkpoint(root, NAME, lambda: PosterV2(DECLARED_CLASSES))


SPEC = FeatureSpec(
    name=NAME,
    modality="video",
    version="1",
    input="faces",
    build=_build,
    shape=shape,
    description=("POSTER V2 (IR-50 + MobileFaceNet landmark cross-attention, 3-scale ViT), official "
                 "7/8-class checkpoints; 224x224 RGB face crops, ImageNet mean/std; data = 768-d SE-gated "
                 "class token (input of VIT.head.linear); extras logits = class scores (7 or 8, from the checkpoint)"),
    weights=NAME,
    random_weights=random_weights,
)
