"""The ridge baseline of every run: `ridge` fitted on each fold's training clips (alpha on its
validation clips) and scored on the same validation predictions as the model."""
from __future__ import annotations

import time

import numpy as np
import torch

from fusion.data import FusionData, Normalizer, make_batch
from fusion.heads import build_head
from fusion.metrics import score


CHUNK_VALUES = 1 << 26  # float32 values widened at a time (256 MiB): 512 clips of vectors, ~160 of token sets


def pooled_features(model, data: FusionData, norm: Normalizer, rows: torch.Tensor,
                    batch_size: int = 512) -> torch.Tensor:
    """The ridge head's pooled statistics of `rows`, in chunks (never all steps in memory)."""
    per_clip = sum(b.data[0].numel() for b in data.blocks.values())
    batch_size = max(1, min(batch_size, CHUNK_VALUES // max(per_clip, 1)))
    with torch.no_grad():
        parts = [model.pool(*make_batch(data, norm, chunk)) for chunk in rows.split(batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, 0)


def fit_baseline(prep, norms: list[Normalizer], val_ids: list[str]) -> dict:
    """Out-of-fold ridge predictions for `val_ids` (the run's validation clips, in order) and
    their score: {"head", "alpha" (per fold), "val" (score), "seconds"}."""
    t0 = time.perf_counter()
    data, y = prep.data, prep.y
    oof: dict[str, np.ndarray] = {}
    alphas = []
    for fold, norm in zip(prep.plan.folds, norms):
        model = build_head("ridge", data.streams())
        train_rows, val_rows = data.rows(fold.train), data.rows(fold.val)
        info = model.fit_closed_form(pooled_features(model, data, norm, train_rows),
                                     y[train_rows], pooled_features(model, data, norm, val_rows),
                                     y[val_rows])
        alphas.append(info["alpha"])
        oof.update(zip(fold.val, info["val_pred"]))
    pred = np.stack([oof[c] for c in val_ids])
    true = y[data.rows(val_ids)].numpy()
    return {"head": "ridge", "features": "mean,std,max,min per dim", "alpha": alphas,
            "val": score(pred, true).as_dict(), "seconds": time.perf_counter() - t0}
