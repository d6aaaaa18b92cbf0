"""Hyper-parameter search, the trial side (`eri-fit --search N`): the space, a trial's
configuration, and running one trial — an ordinary eri-fit run in
SEARCH_DIR/trials/trial-NNNN that reports its validation mean PCC after every epoch to the
Optuna study (so the median pruner can stop it) and resumes from its last epoch when a
search is continued. Where trials run (sync, local Dask cluster, tcp://, SLURM) is
pipelines.fit_search's business; this module knows nothing of Dask.

Why Optuna: TPE sampling and median pruning on intermediate values are what this search
needs, and its file-based journal storage (one append-only log in the search directory)
lets many worker processes share one study over a shared filesystem without a database
server, and lets an interrupted search continue from that file.

The default space (override any part with --search-space FILE.yaml):
  lr          log-uniform 1e-5 .. 2e-4
  batch_size  one of 8, 16, 32, 64, 128, 256
  hidden      one of 32, 64, 128, 256   (the head's size option, e.g. conv_pool hidden, te d_model)
  dropout     uniform 0 .. 0.5          (the head's dropout option(s))
  head        one of the given heads     (--search-heads; default: the configured head)
Trial 0 is the configuration given (the head's defaults unless flags say otherwise), and the
space is widened just enough to contain it (e.g. the lr range reaches up to conv_pool's 3e-3),
so the best trial is never worse than a plain eri-fit with the same flags.
"""
from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from fusion.heads import get_head

log = logging.getLogger(__name__)
STUDY_FILE, STUDY_NAME = "study.journal", "eri-fit"
TRIALS_DIR = "trials"


@dataclass(frozen=True)
class SearchSpace:
    lr: tuple[float, float] = (1e-5, 2e-4)
    batch_size: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    hidden: tuple[int, ...] = (32, 64, 128, 256)
    dropout: tuple[float, float] = (0.0, 0.5)
    heads: tuple[str, ...] = ()

    def validate(self, default_head: str) -> "SearchSpace":
        heads = self.heads or (default_head,)
        for h in heads:
            if get_head(h).closed_form:
                raise ValueError(f"--search-heads: {h!r} is fitted in closed form; there is nothing to search")
        if not (0 < self.lr[0] <= self.lr[1]):
            raise ValueError(f"search space: lr range must be positive and ordered, got {self.lr}")
        if not self.batch_size or min(self.batch_size) < 2 or not self.hidden or min(self.hidden) < 1:
            raise ValueError("search space: batch_size choices must be >= 2 and hidden choices >= 1")
        if not (0 <= self.dropout[0] <= self.dropout[1] < 1):
            raise ValueError(f"search space: dropout range must lie in [0, 1), got {self.dropout}")
        return dataclasses.replace(self, heads=tuple(heads))

    def including(self, params: dict[str, Any]) -> "SearchSpace":
        """The space widened just enough to contain `params` (trial 0, the configuration given)."""
        def span(r: tuple[float, float], v: float | None) -> tuple[float, float]:
            return r if v is None else (min(r[0], v), max(r[1], v))

        def choices(c: tuple, v: Any) -> tuple:
            return c if v is None or v in c else tuple(sorted((*c, v)))
        return dataclasses.replace(
            self, lr=span(self.lr, params.get("lr")), dropout=span(self.dropout, params.get("dropout")),
            batch_size=choices(self.batch_size, params.get("batch_size")),
            hidden=choices(self.hidden, params.get("hidden")),
            heads=self.heads if params["head"] in self.heads else (params["head"], *self.heads))

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}


def read_space(path: Path | None, heads: list[str] | None) -> SearchSpace:
    """The default space, updated from a YAML file (keys as SearchSpace's fields) and --search-heads."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read the search space ({exc})") from exc
        known = {f.name for f in dataclasses.fields(SearchSpace)}
        unknown = sorted(set(raw) - known)
        if unknown or not isinstance(raw, dict):
            raise ValueError(f"{path}: unknown search-space key(s) {unknown}; known: {sorted(known)}")
    if heads:
        raw["heads"] = heads
    return SearchSpace(**{k: tuple(v) for k, v in raw.items()})


def suggest(trial, space: SearchSpace) -> dict[str, Any]:
    """Sample one configuration: {"head", "lr", "batch_size", "hidden"?, "dropout"?}."""
    with warnings.catch_warnings():  # TPE on a conditional space samples some params independently
        warnings.simplefilter("ignore")
        params: dict[str, Any] = {"head": trial.suggest_categorical("head", list(space.heads))}
        params["lr"] = trial.suggest_float("lr", space.lr[0], space.lr[1], log=True)
        params["batch_size"] = trial.suggest_categorical("batch_size", list(space.batch_size))
        spec = get_head(params["head"])
        if spec.size_option:
            params["hidden"] = trial.suggest_categorical("hidden", list(space.hidden))
        if spec.dropout_options:
            params["dropout"] = trial.suggest_float("dropout", space.dropout[0], space.dropout[1])
    return params


def default_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """The trial-0 parameters: the given configuration expressed in the space's terms."""
    spec = get_head(cfg["head"])
    params = {"head": cfg["head"], "lr": cfg["lr"], "batch_size": cfg["batch_size"]}
    opts = cfg.get("head_options") or {}
    if spec.size_option:
        params["hidden"] = opts.get(spec.size_option, spec.defaults()[spec.size_option])
    if spec.dropout_options:
        name = spec.dropout_options[0]
        params["dropout"] = opts.get(name, spec.defaults()[name])
    return params


def trial_overrides(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The eri-fit overrides of a trial: `base` (what the user gave: flags and --config, with
    "head" set) with `params` applied. A trial of another head than the base's gets that head's
    own defaults: the base's head options and recipe apply to the base's head only."""
    spec = get_head(params["head"])
    same_head = params["head"] == base["head"]
    out = {k: v for k, v in base.items() if k not in ("head_options", "recipe")}
    out.update(head=params["head"], lr=float(params["lr"]), batch_size=int(params["batch_size"]),
               recipe=base.get("recipe") if same_head else None)
    opts = dict(base.get("head_options") or {}) if same_head else {}
    if "hidden" in params and spec.size_option:
        opts[spec.size_option] = int(params["hidden"])
    if "dropout" in params:
        opts.update({name: float(params["dropout"]) for name in spec.dropout_options})
    out["head_options"] = opts
    return out


def trial_dir(search_dir: Path, number: int) -> Path:
    return Path(search_dir) / TRIALS_DIR / f"trial-{number:04d}"


def open_study(search_dir: Path, seed: int = 0, create: bool = False):
    """The study in SEARCH_DIR/study.journal (TPE sampler, median pruner on val PCC by epoch)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(Path(search_dir) / STUDY_FILE)))
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=3)
    if create:
        return optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="maximize",
                                   sampler=sampler, pruner=pruner, load_if_exists=True)
    return optuna.load_study(storage=storage, study_name=STUDY_NAME, sampler=sampler, pruner=pruner)


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs to run one trial (picklable; paths must be visible there)."""
    search_dir: str
    number: int
    trial_id: int
    params: dict[str, Any]
    base: dict[str, Any]
    store: str
    labels: str
    partition: str | None
    resume: bool = False
    seed: int = 0


@contextmanager
def _trial_lock(directory: Path, wait_s: float = 300.0) -> Iterator[None]:
    """One process per trial directory: an orphaned worker of a killed search may still be
    finishing this trial; wait for it rather than write beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{directory}: another process keeps running this trial") from None
                time.sleep(1.0)
        yield
    finally:
        os.close(fd)


def run_trial(task: TrialTask) -> dict[str, Any]:
    """Train one trial; returns {"number", "state" (complete|pruned), "value", ...}. Runs in a
    worker: reports each epoch's val mean PCC to the study and stops when it says prune."""
    import optuna

    from fusion.config import resolve_config
    from fusion.experiment import run_fit

    study = open_study(Path(task.search_dir), task.seed)
    trial = optuna.trial.Trial(study, task.trial_id)
    cfg = resolve_config(None, trial_overrides(task.base, task.params))
    out = trial_dir(Path(task.search_dir), task.number)
    step = {"n": 0, "last": float("nan")}

    def on_epoch(name: str, rec: dict) -> None:
        step["n"] += 1
        step["last"] = rec["val_mean_pcc"]
        with warnings.catch_warnings():  # a resumed trial may report an epoch again
            warnings.simplefilter("ignore")
            trial.report(rec["val_mean_pcc"], step["n"] if cfg.seeds * max(cfg.folds, 1) > 1 else rec["epoch"])
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {rec['epoch']} (val mean PCC {rec['val_mean_pcc']:.4f})")

    t0 = time.perf_counter()
    with _trial_lock(out):
        try:
            outcome = run_fit(cfg, task.store, task.labels, out, partition=task.partition, on_epoch=on_epoch,
                              plots=False, resume=task.resume)
        except optuna.TrialPruned:
            return {"number": task.number, "state": "pruned", "value": step["last"],
                    "seconds": time.perf_counter() - t0, "epochs": step["n"], "run_dir": str(out)}
    m = outcome.metrics
    return {"number": task.number, "state": "complete", "value": m["ensemble"]["mean_pcc"],
            "seconds": time.perf_counter() - t0, "epochs": sum(x["epochs_run"] for x in m["models"]),
            "best_epoch": m["models"][0]["best_epoch"], "run_dir": str(out),
            "baseline": (m.get("baseline") or {}).get("val", {}).get("mean_pcc")}
