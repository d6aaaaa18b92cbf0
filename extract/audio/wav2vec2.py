"""`wav2vec2`: hidden states of a wav2vec 2.0 model (transformers `Wav2Vec2Model`).

Weights: a local Hugging Face checkpoint directory (config.json + model.safetensors or
pytorch_model.bin), by default the weights entry `wav2vec2_base` (768-d); any wav2vec2
checkpoint directory works (its hidden size is the output dim, see `.dim`).

Config:
- `layer`: which hidden state. States are numbered as transformers (v4) lists them:
  0 = transformer input (CNN features projected + positional conv), k = output of layer k,
  and the last one is the model's `last_hidden_state` (with the final LayerNorm of
  "stable layer norm" checkpoints). An int indexes them (negative from the end; -1 = last);
  "mean" averages all of them; a list of ints averages those.
- `normalize`: zero mean, unit variance per clip, (x − mean) / sqrt(var + 1e-7), as
  Wav2Vec2FeatureExtractor(do_normalize=True) does.
- `chunk_seconds`: the convolutional feature encoder sees at most this much audio per piece
  (memory); pieces are stitched exactly (extract/audio/wav2vec2_forward.py), so the output
  equals the unchunked run. The transformer always sees the whole clip: self-attention is
  global, so chunking it with any finite overlap changes the output (tiny random models, 60 s,
  20 s chunks with 2 s overlap: max abs difference 5e-2 with group norm, 1.6e-3 with layer
  norm); scaled-dot-product attention keeps its memory linear in length.

Batching: many clips per forward pass, and a clip's output does not depend on what it was
batched with, for both feat_extract_norm kinds. transformers' advice not to pass an attention
mask to group-norm checkpoints (wav2vec2-base) is about its own forward, where zero padding
shifts the GroupNorm statistics of every padded clip; here those statistics never include
padding, and the transformer gets the frame attention mask.

Frames: T = floor((N − 400) / 320) + 1 for N ≥ 400 samples (0 rows below); row i covers
samples [320 i, 320 i + 400) and its time is its start, i · 0.02 s.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from extract.audio.windows import SAMPLE_RATE, check_waves, frame_times, receptive_field
from extract.specs import BuildOptions, FeatureOutput, FeatureSpec, OutputShape

log = logging.getLogger(__name__)
WEIGHTS = "wav2vec2_base"
BASE_DIM, BASE_STRIDE = 768, 320  # wav2vec2-base: hidden size, total conv stride in samples


@dataclass(frozen=True)
class Wav2Vec2Options:
    layer: int | str | tuple[int, ...] = -1  # hidden state index, "mean", or indices to average
    normalize: bool = True
    chunk_seconds: float | None = 20.0

    def __post_init__(self) -> None:
        layer = self.layer
        ok = (isinstance(layer, int) and not isinstance(layer, bool)) or layer == "mean" or (
            isinstance(layer, (list, tuple)) and layer and all(isinstance(k, int) for k in layer))
        if not ok:
            raise ValueError(f"wav2vec2: layer must be an int, 'mean' or a list of ints; got {layer!r}")
        if isinstance(layer, list):
            object.__setattr__(self, "layer", tuple(layer))
        if self.chunk_seconds is not None and not self.chunk_seconds > 0:
            raise ValueError(f"wav2vec2: chunk_seconds must be positive or None (no chunking); "
                             f"got {self.chunk_seconds!r}")


def load_model(path: str | Path, device: str = "cpu"):
    """Wav2Vec2Model from a local checkpoint directory (never the hub); eval, frozen, float32.

    Accepts transformers' layout, `wav2vec2.`-prefixed pre-training/CTC checkpoints and the
    legacy weight_g/weight_v names of the positional conv. Missing weights are an error.
    """
    import torch
    from transformers import Wav2Vec2Model
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-worker "Loading weights" bar would garble our progress bar
    directory = Path(path)
    if directory.is_file():
        directory = directory.parent
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"wav2vec2: {directory} is not a Hugging Face checkpoint directory "
                                f"(no config.json)")
    model, info = Wav2Vec2Model.from_pretrained(directory, local_files_only=True, output_loading_info=True,
                                                dtype=torch.float32, attn_implementation="sdpa")
    missing = sorted(set(info["missing_keys"]) - {"masked_spec_embed"})  # training-only parameter
    mismatched = sorted(str(k) for k in info["mismatched_keys"])
    if missing or mismatched:
        raise ValueError(f"wav2vec2: checkpoint {directory} does not fit its config.json: "
                         f"missing {missing[:8]}{'…' if len(missing) > 8 else ''}, mismatched {mismatched[:8]}")
    return model.eval().requires_grad_(False).to(device)


def preprocessor_settings(directory: Path) -> dict[str, Any]:
    path = directory / "preprocessor_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


class Wav2Vec2Extractor:
    def __init__(self, model, config: Wav2Vec2Options, batch_size: int = 64, device: str = "cpu") -> None:
        from extract.audio.wav2vec2_forward import Wav2Vec2Forward

        if getattr(model, "adapter", None) is not None:
            raise ValueError("wav2vec2: checkpoints with an adapter (add_adapter=True) are not supported")
        self.model, self.config, self.device = model, config, device
        self.num_states = int(model.config.num_hidden_layers) + 1
        states = self._state_indices(config.layer)
        chunk = config.chunk_seconds
        _, hop = receptive_field(list(model.config.conv_kernel), list(model.config.conv_stride))
        chunk_frames = None if chunk is None else max(1, int(round(chunk * SAMPLE_RATE / hop)))
        self.forward = Wav2Vec2Forward(model, states, chunk_frames, batch_size, device)
        self.dim = int(model.config.hidden_size)
        self.frame_step = hop / SAMPLE_RATE

    def _state_indices(self, layer) -> list[int]:
        n = self.num_states
        chosen = list(range(n)) if layer == "mean" else [layer] if isinstance(layer, int) else list(layer)
        if not chosen or any(not isinstance(k, int) or not -n <= k < n for k in chosen):
            raise ValueError(f"wav2vec2: layer must be an int in [{-n}, {n - 1}], 'mean' or a list of ints; "
                             f"got {layer!r}")
        return sorted({k % n for k in chosen})

    def run(self, waves: list[np.ndarray], sample_rate: int) -> list[FeatureOutput]:
        import torch

        clips = check_waves(waves, sample_rate, "wav2vec2")
        lengths = [self.forward.frames(w.size) for w in clips]
        with torch.inference_mode():
            x = [torch.from_numpy(self._normalize(w)).to(self.device) for w, t in zip(clips, lengths) if t]
            encoded = iter(self.forward(x))
        outputs = []
        for t in lengths:
            data = next(encoded) if t else np.zeros((0, self.dim), np.float32)
            outputs.append(FeatureOutput(data=data, times=frame_times(t, self.frame_step)))
        return outputs

    def _normalize(self, wave: np.ndarray) -> np.ndarray:
        if not self.config.normalize or wave.size == 0:
            return wave
        w = wave.astype(np.float64)
        return ((w - w.mean()) / np.sqrt(w.var() + 1e-7)).astype(np.float32)

def build(options: BuildOptions) -> Wav2Vec2Extractor:
    config = SPEC.resolve_config(options.config)
    path = options.weights_path
    if path is None:
        from extract.weights import resolve  # direct library use; the pipeline passes the path

        path = resolve(WEIGHTS).path
    model = load_model(path, options.device)
    pre = preprocessor_settings(Path(path) if Path(path).is_dir() else Path(path).parent)
    if pre.get("sampling_rate", SAMPLE_RATE) != SAMPLE_RATE:
        raise ValueError(f"wav2vec2: checkpoint {path} expects {pre['sampling_rate']} Hz audio; "
                         f"the pipeline delivers {SAMPLE_RATE} Hz")
    if "do_normalize" in pre and bool(pre["do_normalize"]) != bool(config.normalize):
        log.warning("wav2vec2: normalize=%s but %s/preprocessor_config.json says do_normalize=%s",
                    config.normalize, path, pre["do_normalize"])
    return Wav2Vec2Extractor(model, config, options.batch_size, options.device)


def checkpoint_dir(path: str | Path) -> Path:
    path = Path(path)
    return path.parent if path.is_file() else path


def shape(config: Wav2Vec2Options, weights: dict[str, str]) -> OutputShape:
    """Width and frame step from the checkpoint's config.json (wav2vec2-base's without weights)."""
    dim, stride = BASE_DIM, BASE_STRIDE
    if weights.get(WEIGHTS):
        try:
            hf = json.loads((checkpoint_dir(weights[WEIGHTS]) / "config.json").read_text())
            dim = int(hf.get("hidden_size", dim))
            if hf.get("conv_stride"):
                stride = receptive_field(list(hf["conv_kernel"]), list(hf["conv_stride"]))[1]
        except (OSError, ValueError, TypeError) as exc:
            log.debug("wav2vec2: cannot read %s/config.json: %s", weights[WEIGHTS], exc)
    return OutputShape((dim,), stride / SAMPLE_RATE)


def random_weights(root: Path, config: Wav2Vec2Options) -> None:
    """A random-initialised wav2vec2-base directory (the official architecture and file layout)."""
    import torch
    import transformers

    torch.manual_seed(0)
    transformers.Wav2Vec2Model(transformers.Wav2Vec2Config()).save_pretrained(root / WEIGHTS)


SPEC = FeatureSpec(
    name="wav2vec2",
    modality="audio",
    version="1",
    input="audio",
    build=build,
    shape=shape,
    config=Wav2Vec2Options,
    examples=({"layer": 3}, {"layer": "mean", "chunk_seconds": 1.0}),
    description="wav2vec 2.0 hidden states (last layer of wav2vec2-base by default), 768-d every 20 ms "
                "(width and step follow the checkpoint's config.json); option layer = index, 'mean' or list",
    weights=WEIGHTS,
    random_weights=random_weights,
)
