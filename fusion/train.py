"""Training one model: Adam, ReduceLROnPlateau and early stopping on validation mean PCC,
optional EMA of weights (the evaluated and saved model is then the EMA) and gradient
clipping. Deterministic on CPU for a given seed (same data, same thread count)."""
from __future__ import annotations

import copy
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from fusion.config import FitConfig
from fusion.data import FusionData, Normalizer, make_batch
from fusion.heads.registry import FusionHead
from fusion.losses import parse_loss
from fusion.metrics import Score, score

log = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class EMA:
    """Exponential moving average of a model's parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        src = model.state_dict()
        for k, v in self.module.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(self.decay).add_(src[k], alpha=1.0 - self.decay)
            else:
                v.copy_(src[k])


@dataclass
class TrainResult:
    state: dict[str, torch.Tensor]
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best: Score | None = None
    val_pred: np.ndarray | None = None
    data_seconds: float = 0.0
    train_seconds: float = 0.0


@torch.no_grad()
def predict_logits(model: FusionHead, data: FusionData, norm: Normalizer, rows: torch.Tensor,
                   batch_size: int = 512) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = [model.logits(*make_batch(data, norm, chunk)) for chunk in rows.split(batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 7)


def train_model(model: FusionHead, data: FusionData, norm: Normalizer, y: torch.Tensor,
                train_rows: torch.Tensor, val_rows: torch.Tensor, cfg: FitConfig, seed: int,
                on_epoch: Callable[[dict], None] | None = None) -> TrainResult:
    """Train `model` on `train_rows` of `data` (targets `y`, aligned with data.ids) and keep
    the weights of the epoch with the best validation mean PCC."""
    set_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = parse_loss(cfg.loss)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=cfg.lr_factor,
                                                       patience=cfg.lr_patience, min_lr=cfg.min_lr)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    result = TrainResult(state={})
    best_pcc, wait = -float("inf"), 0
    y_val = y[val_rows]
    n_train = len(train_rows)
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        data_s, total, seen = 0.0, 0.0, 0
        perm = train_rows[torch.randperm(n_train, generator=gen)]
        for start in range(0, n_train, cfg.batch_size):
            batch = perm[start:start + cfg.batch_size]
            if len(batch) < 2:  # PCC/CCC terms and batch statistics need two clips
                continue
            td = time.perf_counter()
            x, m = make_batch(data, norm, batch)
            target = y[batch]
            data_s += time.perf_counter() - td
            logits = model.logits(x, m)
            loss = loss_fn(torch.sigmoid(logits), logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if ema is not None:
                ema.update(model)
            total += loss.item() * len(batch)
            seen += len(batch)
        train_s = time.perf_counter() - t0
        evaluated = ema.module if ema is not None else model
        val_logits = predict_logits(evaluated, data, norm, val_rows, cfg.eval_batch_size)
        val_pred = torch.sigmoid(val_logits)
        val_loss = float(loss_fn(val_pred, val_logits, y_val))
        sc = score(val_pred.numpy(), y_val.numpy())
        sched.step(sc.mean)
        result.data_seconds += data_s
        result.train_seconds += train_s
        rec = {"epoch": epoch, "train_loss": total / max(seen, 1), "val_loss": val_loss,
               "val_mean_pcc": sc.mean, "lr": opt.param_groups[0]["lr"],
               "seconds": time.perf_counter() - t0, "train_seconds": train_s, "data_seconds": data_s}
        result.history.append(rec)
        if sc.mean > best_pcc + 1e-7:
            best_pcc, wait = sc.mean, 0
            result.best_epoch, result.best = epoch, sc
            result.val_pred = val_pred.numpy().copy()
            result.state = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
        else:
            wait += 1
        rec["best_val_mean_pcc"] = best_pcc
        if on_epoch is not None:
            on_epoch(rec)
        log.debug("epoch %d: %s", epoch, rec)
        if wait >= cfg.patience:
            log.info("early stop at epoch %d (best %d: %.4f)", epoch, result.best_epoch, best_pcc)
            break
    return result
