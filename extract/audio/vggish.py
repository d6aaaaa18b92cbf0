"""`vggish`: 128-d VGGish embeddings, one per non-overlapping 0.96 s example.

Row k covers samples [k·15360, k·15360 + 15600) at 16 kHz (96 frames of 25 ms, 10 ms hop);
its time is the example START, k·0.96 s. As in torchvggish an incomplete tail is dropped;
a non-empty clip shorter than one example is zero-padded to one row; an empty clip gives
no rows. Examples of all clips in a call go through the network together.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from extract.audio.logmel import VGGISH_EXAMPLE_SECONDS, VGGISH_SR, vggish_examples
from extract.audio.windows import check_waves, frame_times
from extract.specs import BuildOptions, FeatureOutput, FeatureSpec, fixed_shape

log = logging.getLogger(__name__)

Postprocess = Literal["none", "pca", "pca_quantized"]
POSTPROCESS = ("none", "pca", "pca_quantized")
WEIGHTS, PCA_WEIGHTS = "vggish", "vggish_pca"
EMBEDDING_DIM = 128

DESCRIPTION = (
    "VGGish (AudioSet) 128-d embedding per 0.96 s example, time = example start. "
    "Option postprocess: 'none' (default, the raw embedding after the final ReLU), 'pca' (PCA/whitening "
    "with the released vggish_pca parameters) or 'pca_quantized' (PCA, clipped to [-2, 2] and rounded to "
    "8 bits, 0..255: the YouTube-8M/AudioSet release format). PCA+quantisation is off by default because "
    "it existed to make the released features compact; the clipping and 8-bit rounding discard information, "
    "and the raw embedding is the better input for regression heads."
)


@dataclass(frozen=True)
class VGGishConfig:
    postprocess: Postprocess = "none"

    def __post_init__(self) -> None:
        if self.postprocess not in POSTPROCESS:
            raise ValueError(f"vggish: postprocess must be one of {POSTPROCESS}, got {self.postprocess!r}")


class VGGishExtractor:
    """Batches the log-mel examples of many clips through VGGish (frozen, eval, inference mode)."""

    def __init__(self, model, config: VGGishConfig, batch_size: int = 64, device: str = "cpu") -> None:
        self.model = model.eval().requires_grad_(False).to(device)
        self.config = config
        self.batch_size = max(1, int(batch_size))
        self.device = device

    def run(self, waves: list[np.ndarray], sample_rate: int) -> list[FeatureOutput]:
        examples = [vggish_examples(w) for w in check_waves(waves, sample_rate, "vggish", VGGISH_SR)]
        counts = [len(e) for e in examples]
        embedded = self.embed(np.concatenate(examples, axis=0)) if sum(counts) else np.zeros((0, 128), np.float32)
        outputs, start = [], 0
        for n in counts:
            outputs.append(FeatureOutput(data=embedded[start:start + n], times=frame_times(n, VGGISH_EXAMPLE_SECONDS)))
            start += n
        return outputs

    def embed(self, examples: np.ndarray) -> np.ndarray:
        """(N, 96, 64) log-mel examples -> (N, 128) float32, post-processed as configured."""
        import torch

        parts = []
        with torch.inference_mode():
            for i in range(0, len(examples), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(examples[i:i + self.batch_size])).to(self.device)
                y = self.model(x.unsqueeze(1))
                if self.config.postprocess != "none":
                    y = self.model.pproc(y, quantize=self.config.postprocess == "pca_quantized")
                parts.append(y.float().cpu().numpy())
        return np.concatenate(parts, axis=0).astype(np.float32, copy=False)


def build(options: BuildOptions) -> VGGishExtractor:
    from extract.nets.strict import load_strict
    from extract.nets.vggish import Postprocessor, VGGish
    from extract.weights import load_state_dict, resolve

    config = SPEC.resolve_config(options.config)
    if options.weights_path is None:
        raise ValueError("vggish: no weights path given (registry entry 'vggish'; "
                         "fetch it with `eri-weights fetch vggish`)")
    state = dict(load_state_dict(options.weights_path))
    # a full torchvggish state_dict also carries the PCA under pproc.*; the released vggish-*.pth does not
    pca_state = {k: state.pop(k) for k in list(state) if k.startswith("pproc.")}
    model = load_strict(VGGish(with_pca=False), state, str(options.weights_path))
    if config.postprocess != "none":
        # the pipeline passes the vggish_pca entry it fingerprinted; a direct call may rely on
        # PCA parameters inside a full torchvggish state_dict, or on the resolver
        pca_path = options.weights.get(PCA_WEIGHTS)
        if pca_path is None and not pca_state:
            pca_path = str(resolve(PCA_WEIGHTS).path)
        if pca_path is not None:
            log.info("vggish: PCA parameters from %s", pca_path)
            pca_state = load_state_dict(pca_path)
        model.pproc = Postprocessor()
        model.pproc.load_pca(pca_state)
    return VGGishExtractor(model, config, options.batch_size, options.device)


def weights_entries(config: VGGishConfig) -> tuple[str, ...]:
    """The network, and the PCA parameters when post-processing uses them (both change the numbers)."""
    return (WEIGHTS,) if config.postprocess == "none" else (WEIGHTS, PCA_WEIGHTS)


def random_weights(root, config: VGGishConfig) -> None:
    """Random-initialised files in the released layouts: vggish-*.pth (features + embeddings) and
    vggish_pca_params-*.pth ({pca_eigen_vectors, pca_means flat})."""
    import torch

    from extract.nets.vggish import VGGish

    torch.manual_seed(0)
    (root / WEIGHTS).mkdir(parents=True, exist_ok=True)
    torch.save(VGGish().state_dict(), root / WEIGHTS / "vggish-random.pth")
    if PCA_WEIGHTS in weights_entries(config):
        (root / PCA_WEIGHTS).mkdir(parents=True, exist_ok=True)
        pca = {"pca_eigen_vectors": torch.linalg.qr(torch.randn(EMBEDDING_DIM, EMBEDDING_DIM))[0],
               "pca_means": torch.randn(EMBEDDING_DIM)}
        torch.save(pca, root / PCA_WEIGHTS / "vggish_pca_params-random.pth")


SPEC = FeatureSpec(
    name="vggish",
    modality="audio",
    version="1",
    input="audio",
    build=build,
    shape=fixed_shape(EMBEDDING_DIM, VGGISH_EXAMPLE_SECONDS),
    config=VGGishConfig,
    examples=({"postprocess": "pca"},),
    description=DESCRIPTION,
    weights=weights_entries,
    random_weights=random_weights,
)
