"""Model checkpoints: weights and normalisation as safetensors, everything needed to
rebuild the model (head, options, streams, features with fingerprints, length policy)
as JSON — loadable without the command that trained it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from fusion.data import Normalizer
from fusion.heads import StreamInfo, build_head
from fusion.heads.registry import FusionHead
from fusion.labels import EMOTIONS

MODEL_FILE, NORM_FILE, META_FILE = "model.safetensors", "norm.safetensors", "model.json"


@dataclass
class Checkpoint:
    model: FusionHead
    norm: Normalizer
    meta: dict[str, Any]

    @property
    def feature_refs(self) -> list[str]:
        return [f["ref"] for f in self.meta["features"].values()]


def save_checkpoint(directory: Path, head: str, head_options: dict[str, Any],
                    features: dict[str, dict], state: dict[str, torch.Tensor], norm: Normalizer,
                    extra: dict[str, Any] | None = None) -> None:
    """features: name -> {ref, fingerprint, dim, steps, length, modality[, tokens]}."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / MODEL_FILE))
    save_file({k: v.contiguous() for k, v in norm.state().items()}, str(directory / NORM_FILE))
    meta = {"format": "eri-fusion/1", "head": head, "head_options": head_options,
            "features": features, "outputs": list(EMOTIONS), **(extra or {})}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2))


def load_checkpoint(directory: str | Path) -> Checkpoint:
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{directory}: no {META_FILE}; not a fusion checkpoint")
    meta = json.loads(meta_path.read_text())
    streams = {n: StreamInfo(int(f["dim"]), int(f["steps"]), f["modality"], int(f.get("tokens", 0)))
               for n, f in meta["features"].items()}
    model = build_head(meta["head"], streams, meta["head_options"])
    model.load_state_dict(load_file(str(directory / MODEL_FILE)), strict=True)
    model.eval()
    norm = Normalizer.from_state(load_file(str(directory / NORM_FILE)))
    return Checkpoint(model, norm, meta)
