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
from pathlib import Path
from typing import Any

import numpy as np

from extract.audio.windows import SAMPLE_RATE, check_waves, frame_times, receptive_field
from extract.specs import BuildOptions, FeatureOutput, FeatureSpec

log = logging.getLogger(__name__)
DEFAULT_CONFIG: dict[str, Any] = {"layer": -1, "normalize": True, "chunk_seconds": 20.0}


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
    def __init__(self, model, config: dict[str, Any], batch_size: int = 64, device: str = "cpu") -> None:
        from extract.audio.wav2vec2_forward import Wav2Vec2Forward

        if getattr(model, "adapter", None) is not None:
            raise ValueError("wav2vec2: checkpoints with an adapter (add_adapter=True) are not supported")
        self.model, self.config, self.device = model, config, device
        self.num_states = int(model.config.num_hidden_layers) + 1
        states = self._state_indices(config["layer"])
        chunk = config["chunk_seconds"]
        if chunk is not None and not chunk > 0:
            raise ValueError(f"wav2vec2: chunk_seconds must be positive or None (no chunking); got {chunk!r}")
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
        if not self.config["normalize"] or wave.size == 0:
            return wave
        w = wave.astype(np.float64)
        return ((w - w.mean()) / np.sqrt(w.var() + 1e-7)).astype(np.float32)

def build(options: BuildOptions) -> Wav2Vec2Extractor:
    config = SPEC.config_with(options.config)
    path = options.weights_path
    if path is None:
        from extract.weights import resolve  # direct library use; the pipeline passes the path

        path = resolve(SPEC.weights).path
    model = load_model(path, options.device)
    pre = preprocessor_settings(Path(path) if Path(path).is_dir() else Path(path).parent)
    if pre.get("sampling_rate", SAMPLE_RATE) != SAMPLE_RATE:
        raise ValueError(f"wav2vec2: checkpoint {path} expects {pre['sampling_rate']} Hz audio; "
                         f"the pipeline delivers {SAMPLE_RATE} Hz")
    if "do_normalize" in pre and bool(pre["do_normalize"]) != bool(config["normalize"]):
        log.warning("wav2vec2: normalize=%s but %s/preprocessor_config.json says do_normalize=%s",
                    config["normalize"], path, pre["do_normalize"])
    extractor = Wav2Vec2Extractor(model, config, options.batch_size, options.device)
    if extractor.dim != SPEC.dim:
        log.info("wav2vec2: checkpoint %s gives %d-d features (spec declares %d for wav2vec2-base)",
                 path, extractor.dim, SPEC.dim)
    return extractor


SPEC = FeatureSpec(
    name="wav2vec2",
    modality="audio",
    version="1",
    dim=768,
    frame_step=320 / SAMPLE_RATE,
    input="audio",
    build=build,
    description="wav2vec 2.0 hidden states (last layer of wav2vec2-base by default), 768-d every 20 ms",
    weights="wav2vec2_base",
    default_config=DEFAULT_CONFIG,
)
