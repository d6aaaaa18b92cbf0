"""Predictions from a run directory for any clips in a store (eri-predict)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from feature_store import FeatureStore
from fusion.checkpoint import META_FILE, Checkpoint, load_checkpoint
from fusion.data import DataPolicy, load_fusion_data
from fusion.labels import align_ids, store_clip_ids
from fusion.train import predict_logits

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    ids: list[str]
    values: np.ndarray                 # (N, 7) in [0, 1], averaged over the run's models
    models: list[str]
    dropped: dict[str, list[str]] = field(default_factory=dict)
    zero_filled: dict[str, list[str]] = field(default_factory=dict)


def load_run(run_dir: str | Path) -> tuple[dict, list[tuple[str, Checkpoint]]]:
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no config.yaml; not an eri-fit run directory")
    cfg = yaml.safe_load(cfg_path.read_text())
    dirs = sorted(p.parent for p in (run_dir / "checkpoints").glob(f"*/{META_FILE}"))
    if not dirs:
        raise FileNotFoundError(f"{run_dir}/checkpoints: no model checkpoints")
    return cfg, [(d.name, load_checkpoint(d)) for d in dirs]


def predict_run(run_dir: str | Path, store: FeatureStore | str | Path, ids: list[str],
                missing: str | None = None, batch_size: int = 512) -> Prediction:
    """Average the predictions of every model in `run_dir` for `ids`. Features are read
    at the fingerprints the run was trained on, with the run's length policy. Ids are
    matched to the store by `align_ids`; the result names clips by the ids given."""
    cfg, checkpoints = load_run(run_dir)
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    feats = checkpoints[0][1].meta["features"]
    policy = DataPolicy(steps=int(cfg.get("steps", 32)),
                        steps_per_feature={n: int(f["steps"]) for n, f in feats.items()},
                        length=cfg.get("length", "resample"),
                        length_per_feature={n: f["length"] for n, f in feats.items()},
                        missing=missing or cfg.get("missing", "error"),
                        modalities={n: f["modality"] for n, f in feats.items()})
    refs = [f["ref"] for f in feats.values()]
    ids = list(ids)
    to_store = align_ids(ids, store_clip_ids(store, refs), "the clips to predict")
    back = {stored: given for given, stored in to_store.items()}
    data = load_fusion_data(store, refs, [to_store[c] for c in ids], policy)
    rows = torch.arange(len(data.ids))
    preds = []
    for name, ck in checkpoints:
        preds.append(torch.sigmoid(predict_logits(ck.model, data, ck.norm, rows, batch_size)).numpy())
        log.info("predicted %d clips with %s", len(rows), name)

    def as_given(stored: list[str]) -> list[str]:
        return [back.get(c, c) for c in stored]
    return Prediction(as_given(data.ids), np.mean(preds, axis=0), [n for n, _ in checkpoints],
                      {f: as_given(v) for f, v in data.dropped.items()},
                      {f: as_given(v) for f, v in data.zero_filled.items()})


def describe_run(run_dir: str | Path) -> dict:
    metrics = Path(run_dir) / "metrics.json"
    return json.loads(metrics.read_text()) if metrics.is_file() else {}
