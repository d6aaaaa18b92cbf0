"""A whole fit: labels + features -> splits -> (folds x seeds) models -> ensemble -> run dir,
with the ridge baseline fitted beside it on the same splits.

Crash safety: every model writes its training state after each epoch
(checkpoints/<model>/resume.pt) and, once finished, its checkpoint and member.json; a run
started with `resume=True` skips finished models and continues the unfinished one from its
last epoch, so it ends where an uninterrupted run would.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from feature_store import FeatureStore
from fusion.baseline import fit_baseline
from fusion.checkpoint import save_checkpoint
from fusion.config import FitConfig, write_config
from fusion.data import FusionData, Normalizer, load_fusion_data
from fusion.heads import build_head, get_head
from fusion.labels import EMOTIONS, Labels, align_ids, load_labels, store_clip_ids
from fusion.metrics import score
from fusion.plots import write_plots
from fusion.resume import RESUME_FILE
from fusion.rundir import INPUTS_FILE, write_history, write_json, write_predictions
from fusion.splits import Fold, Plan, plan_splits
from fusion.threads import apply_threads
from fusion.train import TrainResult, predict_logits, set_seed, train_model

log = logging.getLogger(__name__)
MEMBER_FILE, MEMBER_PREDS = "member.json", "predictions.safetensors"


@dataclass
class FitOutcome:
    run_dir: Path
    metrics: dict
    val_ids: list[str] = field(default_factory=list)
    val_pred: np.ndarray | None = None
    val_true: np.ndarray | None = None
    histories: dict[str, list[dict]] = field(default_factory=dict)


@dataclass
class Prepared:
    """Everything a model of the run is trained from."""
    cfg: FitConfig
    labels: Labels
    data: FusionData
    plan: Plan
    y: torch.Tensor                  # (N, 7) aligned with data.ids, NaN -> 0
    features: dict[str, dict]        # name -> describe()
    spelling: dict[str, str]
    load_seconds: float


@dataclass
class Member:
    record: dict
    val_pred: np.ndarray             # rows of fold.val
    test_pred: np.ndarray | None     # rows of plan.test
    history: list[dict]


def _summary(scores: list[dict]) -> dict:
    per = np.array([[s["pcc"][e] for e in EMOTIONS] for s in scores])
    means = per.mean(axis=1)
    return {"n_models": len(scores), "mean_pcc": float(means.mean()), "std_pcc": float(means.std()),
            "pcc_mean": dict(zip(EMOTIONS, per.mean(axis=0).tolist())),
            "pcc_std": dict(zip(EMOTIONS, per.std(axis=0).tolist()))}


def prepare(cfg: FitConfig, store: FeatureStore | str | Path, labels: Labels | str | Path,
            partition: str | Path | None = None) -> Prepared:
    """Labels, features in memory, and the splits of `cfg`."""
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    if not isinstance(labels, Labels):
        labels = load_labels(labels, partition=partition, split_column=cfg.split_column,
                             scale=cfg.label_scale)
    labels = labels.renamed(align_ids(labels.ids, store_clip_ids(store, cfg.features),
                                      labels.source or "labels"))
    t0 = time.perf_counter()
    data = load_fusion_data(store, cfg.features, labels.ids, cfg.data_policy())
    load_s = time.perf_counter() - t0
    plan = plan_splits(labels, data.ids, cfg.folds, cfg.val_fraction, cfg.seed)
    pos = labels.index()
    y = torch.from_numpy(np.nan_to_num(labels.values[[pos[c] for c in data.ids]], nan=0.0))
    features = {n: b.describe() for n, b in data.blocks.items()}
    return Prepared(cfg, labels, data, plan, y, features, labels.spelling(), load_s)


def member_name(plan: Plan, fold: Fold, seed: int) -> str:
    return f"{fold.name}-seed{seed}" if len(plan.folds) > 1 else f"seed{seed}"


def fit_member(prep: Prepared, fold: Fold, seed: int, norm: Normalizer, ck_dir: Path,
               on_epoch: Callable[[dict], None] | None = None, resume: bool = False) -> Member:
    """Train (or fit in closed form) one model and write its checkpoint and member files."""
    cfg, data = prep.cfg, prep.data
    if resume and (ck_dir / MEMBER_FILE).is_file():
        log.info("%s: finished before, kept", ck_dir.name)
        return _load_member(ck_dir)
    train_rows, val_rows = data.rows(fold.train), data.rows(fold.val)
    set_seed(seed)  # the initial weights depend on the seed alone
    model = build_head(cfg.head, data.streams(), cfg.head_options)
    t1 = time.perf_counter()
    if get_head(cfg.head).closed_form:
        res = _fit_closed_form(model, prep, norm, train_rows, val_rows)
    else:
        state_file = ck_dir / RESUME_FILE
        if not resume:
            state_file.unlink(missing_ok=True)
        res = train_model(model, data, norm, prep.y, train_rows, val_rows, cfg, seed, on_epoch,
                          resume_path=state_file)
    record = {"name": ck_dir.name, "fold": fold.name, "seed": seed, "best_epoch": res.best_epoch,
              "epochs_run": len(res.history), "val": res.best.as_dict() if res.best else None,
              "seconds": time.perf_counter() - t1, "train_seconds": res.train_seconds,
              "data_seconds": res.data_seconds}
    save_checkpoint(ck_dir, cfg.head, cfg.head_options, prep.features, res.state, norm,
                    {"fold": fold.name, "seed": seed, "best_epoch": res.best_epoch})
    test_pred = None
    test_rows = data.rows(prep.plan.test)
    if len(test_rows):
        model.load_state_dict(res.state)
        test_pred = torch.sigmoid(predict_logits(model, data, norm, test_rows, cfg.eval_batch_size)).numpy()
    member = Member(record, res.val_pred, test_pred, res.history)
    _save_member(ck_dir, member)
    (ck_dir / RESUME_FILE).unlink(missing_ok=True)
    return member


def _fit_closed_form(model, prep: Prepared, norm: Normalizer, train_rows: torch.Tensor,
                     val_rows: torch.Tensor) -> TrainResult:
    from fusion.baseline import pooled_features
    bs = prep.cfg.eval_batch_size
    info = model.fit_closed_form(pooled_features(model, prep.data, norm, train_rows, bs), prep.y[train_rows],
                                 pooled_features(model, prep.data, norm, val_rows, bs), prep.y[val_rows])
    val_pred = torch.sigmoid(predict_logits(model, prep.data, norm, val_rows, bs)).numpy()
    sc = score(val_pred, prep.y[val_rows].numpy())
    return TrainResult(state={k: v.clone() for k, v in model.state_dict().items()}, best=sc,
                       val_pred=val_pred, history=[], best_epoch=0)


def _save_member(ck_dir: Path, m: Member) -> None:
    tensors = {"val_pred": torch.from_numpy(np.ascontiguousarray(m.val_pred))}
    if m.test_pred is not None:
        tensors["test_pred"] = torch.from_numpy(np.ascontiguousarray(m.test_pred))
    save_file(tensors, str(ck_dir / MEMBER_PREDS))
    write_json(ck_dir / MEMBER_FILE, {"record": m.record, "history": m.history})  # written last: the marker


def _load_member(ck_dir: Path) -> Member:
    meta = json.loads((ck_dir / MEMBER_FILE).read_text())
    t = load_file(str(ck_dir / MEMBER_PREDS))
    test = t["test_pred"].numpy() if "test_pred" in t else None
    return Member(meta["record"], t["val_pred"].numpy(), test, meta["history"])


def run_fit(cfg: FitConfig, store: FeatureStore | str | Path, labels: Labels | str | Path,
            out_dir: str | Path, partition: str | Path | None = None,
            on_epoch: Callable[[str, dict], None] | None = None, plots: bool = True,
            resume: bool = False, baseline: bool = True) -> FitOutcome:
    """Train every (fold, seed) model of `cfg` and write the run directory."""
    t_start = time.perf_counter()
    cfg.validate()
    threads = apply_threads(cfg.threads)
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    prep = prepare(cfg, store, labels, partition)
    data, plan, y = prep.data, prep.plan, prep.y
    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    write_config(cfg, out / "config.yaml")
    write_json(out / "features.json", prep.features)
    write_json(out / INPUTS_FILE, {"store": str(store.root.resolve()),
                                   "labels": prep.labels.source and str(Path(prep.labels.source).resolve()),
                                   "partition": str(Path(partition).resolve()) if partition else None,
                                   "threads": threads})

    members: list[Member] = []
    oof: dict[str, list[np.ndarray]] = {}
    norms = []
    for fold in plan.folds:
        norm = Normalizer.fit(data, data.rows(fold.train), cfg.standardize)
        norms.append(norm)
        for k in range(cfg.seeds):
            name = member_name(plan, fold, cfg.seed + k)
            cb = (lambda rec, _n=name: on_epoch(_n, rec)) if on_epoch else None
            m = fit_member(prep, fold, cfg.seed + k, norm, out / "checkpoints" / name, cb, resume)
            members.append(m)
            for cid, p in zip(fold.val, m.val_pred):
                oof.setdefault(cid, []).append(p)

    val_ids = [c for c in data.ids if c in oof]
    val_pred = np.stack([np.mean(oof[c], axis=0) for c in val_ids])
    val_true = y[data.rows(val_ids)].numpy()
    ensemble = score(val_pred, val_true).as_dict()
    write_predictions(out / "predictions_val.csv", val_ids, val_pred, prep.spelling)
    records = [m.record for m in members]
    metrics = {"how": plan.how, "head": cfg.head, "recipe": cfg.recipe or None, "features": prep.features,
               "labels": prep.labels.source, "models": records,
               "single": _summary([r["val"] for r in records]), "ensemble": ensemble,
               "best_model": max(records, key=lambda r: r["val"]["mean_pcc"])["name"],
               "data": _data_summary(data, plan, prep.load_seconds), "threads": threads}
    if baseline:
        metrics["baseline"] = fit_baseline(prep, norms, val_ids)
        metrics["beats_baseline"] = ensemble["mean_pcc"] > metrics["baseline"]["val"]["mean_pcc"]
    test_preds = [m.test_pred for m in members if m.test_pred is not None]
    if test_preds:
        test_pred = np.mean(test_preds, axis=0)
        write_predictions(out / "predictions_test.csv", plan.test, test_pred, prep.spelling)
        pos = prep.labels.index()
        labelled = ~np.isnan(prep.labels.values[[pos[c] for c in plan.test]]).any(axis=1)
        if labelled.sum() >= 2:
            test_true = y[data.rows(plan.test)].numpy()
            metrics["test"] = score(test_pred[labelled], test_true[labelled]).as_dict()
    metrics["seconds"] = time.perf_counter() - t_start
    write_json(out / "metrics.json", metrics)
    histories = {m.record["name"]: m.history for m in members}
    write_history(out / "history.csv", histories)
    if plots:
        write_plots(out, histories, metrics, val_pred, val_true)
    log.info("run written to %s", out)
    return FitOutcome(out, metrics, val_ids, val_pred, val_true, histories)


def _data_summary(data: FusionData, plan: Plan, load_s: float) -> dict:
    return {"clips": len(data.ids), "train": len(plan.folds[0].train), "val": len(plan.folds[0].val),
            "test": len(plan.test), "load_seconds": load_s,
            "dropped": {k: v for k, v in data.dropped.items()},
            "zero_filled": {k: v for k, v in data.zero_filled.items()}}
