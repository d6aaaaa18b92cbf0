"""`deepspectrum`: DenseNet121 embeddings of DeepSpectrum spectrogram images, 1024-d per window.

The DeepSpectrum method (Amiriparian et al. 2017) without its Python 3.7 / TensorFlow 1 package:
window the 16 kHz audio (default 1 s windows, 0.5 s hop; row time = window START), draw each
window exactly as DeepSpectrum 0.6.9 draws it (227×227 viridis, see deepspectrum_render), resize
to 224×224 with Pillow's bicubic filter (what Keras' extractor did), ImageNet-normalise ('torch'
mode) and take DenseNet121's global average after the final norm+ReLU (Keras layer `avg_pool`).
Incomplete tail windows are dropped (as DeepSpectrum does); a non-empty clip shorter than one
window is zero-padded to one; an empty clip gives no rows.

Weights: the registry entry `densenet121` in torchvision's layout (legacy `norm.1` names of the
released file are accepted). The original DeepSpectrum used Keras' ImageNet weights; converted to
our layout (extract.nets.densenet.convert_keras_h5) they load too — set bn_eps=1.001e-5 for them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extract.audio.deepspectrum_render import check_mode, render_windows
from extract.audio.logmel import frame
from extract.audio.windows import SAMPLE_RATE, check_waves, frame_times
from extract.specs import BuildOptions, FeatureOutput, FeatureSpec, OutputShape

INPUT_SIZE = 224
EMBEDDING_DIM = 1024
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # Keras 'torch' mode = torchvision's normalisation
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS = "densenet121"

DESCRIPTION = (
    "DeepSpectrum: DenseNet121 avg-pool (1024-d) of the 227x227 viridis spectrogram image of each window "
    "(default 1 s windows, 0.5 s hop, time = window start). Options: mode 'mel' (128 Slaney bands, symlog "
    "axis; default) or 'spectrogram' (linear, 257 bins); window/hop in seconds; bn_eps 1e-5 for torchvision "
    "weights, 1.001e-5 for Keras ImageNet weights converted to our layout (what the original DeepSpectrum used)."
)


@dataclass
class DeepSpectrumConfig:
    mode: str = "mel"
    window: float = 1.0
    hop: float = 0.5
    bn_eps: float = 1e-5

    def __post_init__(self) -> None:
        self.mode = check_mode(self.mode)
        self.window, self.hop, self.bn_eps = float(self.window), float(self.hop), float(self.bn_eps)
        if not (self.window > 0 and self.hop > 0):
            raise ValueError(f"deepspectrum: window and hop must be positive, got {self.window}, {self.hop}")
        if self.window_samples < 512:
            raise ValueError(f"deepspectrum: window {self.window} s is shorter than one 512-sample FFT frame")

    @property
    def window_samples(self) -> int:
        return int(round(self.window * SAMPLE_RATE))

    @property
    def hop_samples(self) -> int:
        return max(1, int(round(self.hop * SAMPLE_RATE)))

    @property
    def frame_step(self) -> float:
        return self.hop_samples / SAMPLE_RATE


def resize_images(images: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, size, size, 3) uint8 with Pillow's bicubic filter, byte-exact with
    `PIL.Image.resize((size, size))` (the Pillow >= 7 default DeepSpectrum's Keras extractor relied on)."""
    from PIL import Image

    if images.shape[1:3] == (size, size):
        return images
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))
    return out


def normalise(images: np.ndarray, device: str = "cpu") -> "torch.Tensor":
    """uint8 (B, H, W, 3) RGB -> float (B, 3, H, W): x/255, then (x − mean)/std per channel (float32,
    the same operations in the same order as Keras' preprocess_input in 'torch' mode)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).float().div_(255.0)
    x = x.sub_(torch.tensor(IMAGENET_MEAN, device=device)).div_(torch.tensor(IMAGENET_STD, device=device))
    return x.permute(0, 3, 1, 2)


class DeepSpectrumExtractor:
    """Windows of many clips are rendered, resized and embedded together, `batch_size` at a time."""

    def __init__(self, model, config: DeepSpectrumConfig, batch_size: int = 64, device: str = "cpu") -> None:
        self.model = model.eval().requires_grad_(False).to(device)
        self.config = config
        self.batch_size = max(1, int(batch_size))
        self.device = device

    def windows(self, wave: np.ndarray) -> np.ndarray:
        """(n,) 16 kHz -> (W, window_samples) view of the clip's windows (short clips padded to one)."""
        size, hop = self.config.window_samples, self.config.hop_samples
        if 0 < len(wave) < size:
            wave = np.pad(wave, (0, size - len(wave)))
        return frame(wave, size, hop)

    def images(self, windows: np.ndarray) -> np.ndarray:
        """(B, window_samples) -> (B, 227, 227, 3) uint8 DeepSpectrum images."""
        return render_windows(windows, SAMPLE_RATE, self.config.mode)

    def run(self, waves: list[np.ndarray], sample_rate: int) -> list[FeatureOutput]:
        per_clip = [self.windows(w) for w in check_waves(waves, sample_rate, "deepspectrum", SAMPLE_RATE)]
        counts = [len(w) for w in per_clip]
        index = [(c, k) for c, n in enumerate(counts) for k in range(n)]
        parts = []
        for start in range(0, len(index), self.batch_size):
            batch = np.stack([per_clip[c][k] for c, k in index[start:start + self.batch_size]])
            parts.append(self.embed_images(self.images(batch)))
        merged = np.concatenate(parts, axis=0) if parts else np.zeros((0, self.model.num_features), np.float32)
        outputs, start = [], 0
        step = self.config.frame_step
        for n in counts:
            outputs.append(FeatureOutput(data=merged[start:start + n], times=frame_times(n, step)))
            start += n
        return outputs

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """(B, 227, 227, 3) uint8 -> (B, 1024) float32."""
        import torch

        x = normalise(resize_images(images), self.device)
        with torch.inference_mode():
            return self.model.embed(x).float().cpu().numpy()


def build(options: BuildOptions) -> DeepSpectrumExtractor:
    from extract.nets.densenet import densenet121, load_densenet_state
    from extract.weights import load_state_dict

    config = SPEC.resolve_config(options.config)
    if options.weights_path is None:
        raise ValueError("deepspectrum: no weights path given (registry entry 'densenet121'; "
                         "fetch it with `eri-weights fetch densenet121`)")
    model = densenet121(bn_eps=config.bn_eps)
    load_densenet_state(model, load_state_dict(options.weights_path), source=str(options.weights_path))
    return DeepSpectrumExtractor(model, config, options.batch_size, options.device)


def random_weights(root, config: DeepSpectrumConfig) -> None:
    """A random-initialised DenseNet121 in torchvision's layout."""
    import torch

    from extract.nets.densenet import densenet121

    torch.manual_seed(0)
    (root / WEIGHTS).mkdir(parents=True, exist_ok=True)
    torch.save(densenet121().state_dict(), root / WEIGHTS / "densenet121-random.pth")


SPEC = FeatureSpec(
    name="deepspectrum",
    modality="audio",
    version="1",
    input="audio",
    build=build,
    shape=lambda config, weights: OutputShape((EMBEDDING_DIM,), config.frame_step),
    config=DeepSpectrumConfig,
    examples=({"window": 0.5, "hop": 0.25, "mode": "spectrogram"},),
    description=DESCRIPTION,
    weights=WEIGHTS,
    random_weights=random_weights,
)
