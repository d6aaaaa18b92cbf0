"""A whole fit: labels + features -> splits -> (folds x seeds) models -> ensemble -> run dir."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from feature_store import FeatureStore
from fusion.checkpoint import save_checkpoint
from fusion.config import FitConfig, write_config
from fusion.data import FusionData, Normalizer, load_fusion_data
from fusion.heads import build_head
from fusion.labels import EMOTIONS, Labels, align_ids, load_labels, store_clip_ids
from fusion.metrics import score
from fusion.plots import write_plots
from fusion.rundir import write_history, write_json, write_predictions
from fusion.splits import plan_splits
from fusion.train import TrainResult, predict_logits, set_seed, train_model

log = logging.getLogger(__name__)


@dataclass
class FitOutcome:
    run_dir: Path
    metrics: dict
    val_ids: list[str] = field(default_factory=list)
    val_pred: np.ndarray | None = None
    val_true: np.ndarray | None = None
    histories: dict[str, list[dict]] = field(default_factory=dict)


def _summary(scores: list[dict]) -> dict:
    per = np.array([[s["pcc"][e] for e in EMOTIONS] for s in scores])
    means = per.mean(axis=1)
    return {"n_models": len(scores), "mean_pcc": float(means.mean()), "std_pcc": float(means.std()),
            "pcc_mean": dict(zip(EMOTIONS, per.mean(axis=0).tolist())),
            "pcc_std": dict(zip(EMOTIONS, per.std(axis=0).tolist()))}


def run_fit(cfg: FitConfig, store: FeatureStore | str | Path, labels: Labels | str | Path,
            out_dir: str | Path, partition: str | Path | None = None,
            on_epoch: Callable[[str, dict], None] | None = None, plots: bool = True) -> FitOutcome:
    """Train every (fold, seed) model of `cfg` and write the run directory."""
    t_start = time.perf_counter()
    cfg.validate()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    if not isinstance(labels, Labels):
        labels = load_labels(labels, partition=partition, split_column=cfg.split_column,
                             scale=cfg.label_scale)
    labels = labels.renamed(align_ids(labels.ids, store_clip_ids(store, cfg.features),
                                      labels.source or "labels"))
    spelling = labels.spelling()  # predictions CSVs write the ids as the labels file did
    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = load_fusion_data(store, cfg.features, labels.ids, cfg.data_policy())
    load_s = time.perf_counter() - t0
    plan = plan_splits(labels, data.ids, cfg.folds, cfg.val_fraction, cfg.seed)
    pos = labels.index()
    y = torch.from_numpy(np.nan_to_num(labels.values[[pos[c] for c in data.ids]], nan=0.0))
    features = {n: b.describe() for n, b in data.blocks.items()}
    write_config(cfg, out / "config.yaml")
    write_json(out / "features.json", features)

    members, histories = [], {}
    oof: dict[str, list[np.ndarray]] = {}
    test_rows = data.rows(plan.test)
    test_preds = []
    for fold in plan.folds:
        train_rows, val_rows = data.rows(fold.train), data.rows(fold.val)
        norm = Normalizer.fit(data, train_rows, cfg.standardize)
        for k in range(cfg.seeds):
            seed = cfg.seed + k
            name = f"{fold.name}-seed{seed}" if len(plan.folds) > 1 else f"seed{seed}"
            set_seed(seed)  # the initial weights depend on the seed alone
            model = build_head(cfg.head, data.streams(), cfg.head_options)
            t1 = time.perf_counter()
            res = train_model(model, data, norm, y, train_rows, val_rows, cfg, seed,
                              (lambda rec, _n=name: on_epoch(_n, rec)) if on_epoch else None)
            histories[name] = res.history
            members.append(_member_record(name, fold.name, seed, res, time.perf_counter() - t1))
            for cid, p in zip(fold.val, res.val_pred):
                oof.setdefault(cid, []).append(p)
            save_checkpoint(out / "checkpoints" / name, cfg.head, cfg.head_options, features,
                            res.state, norm, {"fold": fold.name, "seed": seed,
                                              "best_epoch": res.best_epoch})
            if len(test_rows):
                model.load_state_dict(res.state)
                test_preds.append(torch.sigmoid(
                    predict_logits(model, data, norm, test_rows, cfg.eval_batch_size)).numpy())

    val_ids = [c for c in data.ids if c in oof]
    val_pred = np.stack([np.mean(oof[c], axis=0) for c in val_ids])
    val_true = y[data.rows(val_ids)].numpy()
    ensemble = score(val_pred, val_true).as_dict()
    write_predictions(out / "predictions_val.csv", val_ids, val_pred, spelling)
    metrics = {"how": plan.how, "head": cfg.head, "features": features, "labels": labels.source,
               "models": members, "single": _summary([m["val"] for m in members]),
               "ensemble": ensemble,
               "best_model": max(members, key=lambda m: m["val"]["mean_pcc"])["name"],
               "data": _data_summary(data, plan, load_s)}
    if test_preds:
        test_pred = np.mean(test_preds, axis=0)
        write_predictions(out / "predictions_test.csv", plan.test, test_pred, spelling)
        labelled = ~np.isnan(labels.values[[pos[c] for c in plan.test]]).any(axis=1)
        if labelled.sum() >= 2:
            metrics["test"] = score(test_pred[labelled], y[test_rows].numpy()[labelled]).as_dict()
    metrics["seconds"] = time.perf_counter() - t_start
    write_json(out / "metrics.json", metrics)
    write_history(out / "history.csv", histories)
    if plots:
        write_plots(out, histories, metrics, val_pred, val_true)
    log.info("run written to %s", out)
    return FitOutcome(out, metrics, val_ids, val_pred, val_true, histories)


def _member_record(name: str, fold: str, seed: int, res: TrainResult, seconds: float) -> dict:
    return {"name": name, "fold": fold, "seed": seed, "best_epoch": res.best_epoch,
            "epochs_run": len(res.history), "val": res.best.as_dict() if res.best else None,
            "seconds": seconds, "train_seconds": res.train_seconds,
            "data_seconds": res.data_seconds}


def _data_summary(data: FusionData, plan, load_s: float) -> dict:
    return {"clips": len(data.ids), "train": len(plan.folds[0].train), "val": len(plan.folds[0].val),
            "test": len(plan.test), "load_seconds": load_s,
            "dropped": {k: v for k, v in data.dropped.items()},
            "zero_filled": {k: v for k, v in data.zero_filled.items()}}
