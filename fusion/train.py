"""Training one model: Adam/AdamW, an LR schedule (plateau, cosine with warm-up, or
constant), early stopping on validation mean PCC, optional EMA of weights (the evaluated
and saved model is then the EMA) and gradient clipping. Deterministic on CPU for a given
seed (same data, same thread count), also across an interruption: with a `resume_path`
the whole training state (model, optimiser, EMA, schedule, epoch, best weights, RNGs) is
written there after every epoch and training continues from it when it exists."""
from __future__ import annotations

import copy
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from fusion.config import FitConfig
from fusion.data import FusionData, Normalizer, make_batch
from fusion.heads.registry import FusionHead
from fusion.losses import parse_loss
from fusion.metrics import Score, score
from fusion.resume import load_state, rng_state, save_state, set_rng_state
from pipelines.interrupts import raise_if_interrupted

log = logging.getLogger(__name__)
SCHEDULES = ("plateau", "cosine", "constant")
OPTIMIZERS = ("adam", "adamw")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class EMA:
    """Exponential moving average of a model's parameters and float buffers."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._pairs = [(k, v) for k, v in self.module.state_dict().items()]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        src = model.state_dict()
        floats = [(v, src[k]) for k, v in self._pairs if v.dtype.is_floating_point]
        if floats:  # one fused call instead of a Python loop over tensors
            torch._foreach_lerp_([d for d, _ in floats], [s for _, s in floats], 1.0 - self.decay)
        for k, v in self._pairs:
            if not v.dtype.is_floating_point:
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
def predict_outputs(model: FusionHead, data: FusionData, norm: Normalizer, rows: torch.Tensor,
                    batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, class logits) of `rows` in eval mode."""
    was_training = model.training
    model.eval()
    out = [model.outputs(*make_batch(data, norm, chunk)) for chunk in rows.split(batch_size)]
    model.train(was_training)
    if not out:
        return torch.zeros(0, 7), torch.zeros(0, 7)
    return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])


def predict_logits(model: FusionHead, data: FusionData, norm: Normalizer, rows: torch.Tensor,
                   batch_size: int = 512) -> torch.Tensor:
    return predict_outputs(model, data, norm, rows, batch_size)[0]


def make_optimizer(model: nn.Module, cfg: FitConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.optimizer]
    # foreach: one kernel per step for all tensors (torch only enables it by default on GPUs)
    return kind(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)


class Schedule:
    """The LR over training: `plateau` halves it (lr_factor) after lr_patience epochs
    without a better val PCC; `cosine` warms up linearly for warmup_epochs then decays to
    min_lr at the last epoch, per optimiser step; `constant` keeps it."""

    def __init__(self, opt: torch.optim.Optimizer, cfg: FitConfig, steps_per_epoch: int) -> None:
        self.opt, self.cfg = opt, cfg
        self.total = max(1, cfg.epochs * steps_per_epoch)
        self.warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
        self.step_no = 0
        self.plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr)
            if cfg.schedule == "plateau" else None)
        if cfg.schedule == "cosine":
            self._set(self._cosine(0))

    def _cosine(self, step: int) -> float:
        if step < self.warmup:
            return self.cfg.lr * (step + 1) / (self.warmup + 1)
        frac = (step - self.warmup) / max(1, self.total - self.warmup)
        return self.cfg.min_lr + 0.5 * (self.cfg.lr - self.cfg.min_lr) * (1 + math.cos(math.pi * min(frac, 1.0)))

    def _set(self, lr: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = lr

    def after_step(self) -> None:
        self.step_no += 1
        if self.cfg.schedule == "cosine":
            self._set(self._cosine(self.step_no))

    def after_epoch(self, val_pcc: float) -> None:
        if self.plateau is not None:
            self.plateau.step(val_pcc)

    def state_dict(self) -> dict:
        return {"step_no": self.step_no,
                "plateau": self.plateau.state_dict() if self.plateau is not None else {}}

    def load_state_dict(self, state: dict) -> None:
        self.step_no = int(state["step_no"])
        if self.plateau is not None:
            self.plateau.load_state_dict(state["plateau"])


@dataclass
class _Progress:
    """What the loop carries from epoch to epoch (and what a resume restores)."""
    epoch: int = 0
    best_pcc: float = -float("inf")
    wait: int = 0


def train_model(model: FusionHead, data: FusionData, norm: Normalizer, y: torch.Tensor,
                train_rows: torch.Tensor, val_rows: torch.Tensor, cfg: FitConfig, seed: int,
                on_epoch: Callable[[dict], None] | None = None,
                resume_path: Path | None = None) -> TrainResult:
    """Train `model` on `train_rows` of `data` (targets `y`, aligned with data.ids) and keep
    the weights of the epoch with the best validation mean PCC."""
    set_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = parse_loss(cfg.loss)
    n_train = len(train_rows)
    steps_per_epoch = sum(1 for s in range(0, n_train, cfg.batch_size) if n_train - s >= 2)
    opt = make_optimizer(model, cfg)
    sched = Schedule(opt, cfg, steps_per_epoch)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    result, prog = TrainResult(state={}), _Progress()
    if resume_path is not None and resume_path.is_file():
        _restore(load_state(resume_path), model, opt, sched, ema, gen, result, prog)
        log.info("resumed %s after epoch %d", resume_path.parent.name, prog.epoch)
    params = [p for p in model.parameters() if p.requires_grad]
    y_val = y[val_rows]
    while prog.epoch < cfg.epochs and prog.wait < cfg.patience:
        prog.epoch += 1
        t0 = time.perf_counter()
        model.train()
        data_s, total, seen = 0.0, torch.zeros(()), 0
        perm = train_rows[torch.randperm(n_train, generator=gen)]
        for start in range(0, n_train, cfg.batch_size):
            batch = perm[start:start + cfg.batch_size]
            if len(batch) < 2:  # PCC/CCC terms and batch statistics need two clips
                continue
            raise_if_interrupted()
            td = time.perf_counter()
            x, m = make_batch(data, norm, batch)
            target = y[batch]
            data_s += time.perf_counter() - td
            logits, class_logits = model.outputs(x, m)
            loss = loss_fn(torch.sigmoid(logits), class_logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
            opt.step()
            sched.after_step()
            if ema is not None:
                ema.update(model)
            total += loss.detach() * len(batch)
            seen += len(batch)
        train_s = time.perf_counter() - t0
        evaluated = ema.module if ema is not None else model
        val_logits, val_class = predict_outputs(evaluated, data, norm, val_rows, cfg.eval_batch_size)
        val_pred = torch.sigmoid(val_logits)
        val_loss = float(loss_fn(val_pred, val_class, y_val))
        sc = score(val_pred.numpy(), y_val.numpy())
        lr_used = opt.param_groups[0]["lr"]
        sched.after_epoch(sc.mean)
        result.data_seconds += data_s
        result.train_seconds += train_s
        rec = {"epoch": prog.epoch, "train_loss": float(total) / max(seen, 1), "val_loss": val_loss,
               "val_mean_pcc": sc.mean, "lr": lr_used,
               "seconds": time.perf_counter() - t0, "train_seconds": train_s, "data_seconds": data_s}
        result.history.append(rec)
        if sc.mean > prog.best_pcc + 1e-7:
            prog.best_pcc, prog.wait = sc.mean, 0
            result.best_epoch, result.best = prog.epoch, sc
            result.val_pred = val_pred.numpy().copy()
            result.state = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
        else:
            prog.wait += 1
        rec["best_val_mean_pcc"] = prog.best_pcc
        if resume_path is not None:
            save_state(resume_path, _snapshot(model, opt, sched, ema, gen, result, prog))
        log.debug("epoch %d: %s", prog.epoch, rec)
        if on_epoch is not None:
            on_epoch(rec)
    if prog.wait >= cfg.patience:
        log.info("early stop at epoch %d (best %d: %.4f)", prog.epoch, result.best_epoch, prog.best_pcc)
    return result


def _snapshot(model: nn.Module, opt: torch.optim.Optimizer, sched: Schedule, ema: EMA | None,
              gen: torch.Generator, result: TrainResult, prog: _Progress) -> dict:
    best = result.best
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "schedule": sched.state_dict(),
            "ema": ema.module.state_dict() if ema is not None else {},
            "best_state": result.state, "rng": {**rng_state(), "loop": gen.get_state()},
            "progress": {"epoch": prog.epoch, "best_pcc": prog.best_pcc, "wait": prog.wait,
                         "best_epoch": result.best_epoch,
                         "data_seconds": result.data_seconds, "train_seconds": result.train_seconds},
            "best_score": {"per_emotion": best.per_emotion, "mean": best.mean, "raw": best.raw} if best else {},
            "val_pred": torch.from_numpy(result.val_pred) if result.val_pred is not None else torch.zeros(0),
            "history": result.history}


def _restore(state: dict, model: nn.Module, opt: torch.optim.Optimizer, sched: Schedule, ema: EMA | None,
             gen: torch.Generator, result: TrainResult, prog: _Progress) -> None:
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["schedule"])
    if ema is not None:
        ema.module.load_state_dict(state["ema"])
    set_rng_state(state["rng"])
    gen.set_state(state["rng"]["loop"])
    p = state["progress"]
    prog.epoch, prog.best_pcc, prog.wait = int(p["epoch"]), float(p["best_pcc"]), int(p["wait"])
    result.best_epoch = int(p["best_epoch"])
    result.data_seconds, result.train_seconds = float(p["data_seconds"]), float(p["train_seconds"])
    result.state = dict(state["best_state"])
    if state["best_score"]:
        b = state["best_score"]
        result.best = Score(dict(b["per_emotion"]), float(b["mean"]), list(b["raw"]))
        result.val_pred = state["val_pred"].numpy()
    result.history = list(state["history"])
