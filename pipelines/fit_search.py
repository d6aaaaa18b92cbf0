"""`eri-fit --search N`, the Dask side: ask the study for trials, run them on the scheduler the
user chose (sync, a local cluster, tcp://, SLURM: the same Executors as eri-extract), tell it
the results, and write the search's summary files.

The study lives in SEARCH_DIR/study.journal, so a search that was interrupted (Ctrl-C, a killed
process, a lost allocation) continues when started again: finished trials are kept, trials that
were running are re-run under their own number and continue from their last epoch, and new
trials are asked for until N trials have finished in total. One coordinator per search directory
at a time (a lock file).

SEARCH_DIR/
  search.yaml        what the search was started with (base flags, space, N, store, labels)
  study.journal      the Optuna study (file-based journal storage)
  trials/trial-NNNN/ one eri-fit run directory per trial
  trials.csv         one row per trial: state, val mean PCC, parameters, epochs, seconds
  best_config.yaml   the best trial's configuration (use with eri-fit --config)
  best -> trials/trial-NNNN   and search.json (summary)
"""
from __future__ import annotations

import csv
import fcntl
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from fusion.search import (SearchSpace, TrialTask, default_params, open_study, run_trial, suggest,
                           trial_dir)
from pipelines.interrupts import raise_if_interrupted
from pipelines.schedulers import open_executor
from pipelines.settings import SchedulerSettings

log = logging.getLogger(__name__)
SEARCH_FILE = "search.yaml"
OnTrial = Callable[[dict[str, Any], int, int], None]   # (result, finished so far, N)


class SearchError(ValueError):
    """A search that cannot start or continue; the message says why."""


@dataclass
class SearchPlan:
    n_trials: int
    base: dict[str, Any]          # user-given eri-fit overrides, "head" and pinned features included
    resolved: dict[str, Any]      # the base resolved (trial 0's configuration)
    space: SearchSpace
    store: str
    labels: str
    partition: str | None
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"n_trials": self.n_trials, "base": self.base, "resolved": self.resolved,
                "space": self.space.as_dict(), "store": self.store, "labels": self.labels,
                "partition": self.partition, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchPlan":
        space = SearchSpace(**{k: tuple(v) for k, v in d["space"].items()})
        return cls(int(d["n_trials"]), d["base"], d["resolved"], space, d["store"], d["labels"],
                   d.get("partition"), int(d.get("seed", 0)))


def read_plan(search_dir: Path) -> SearchPlan:
    path = Path(search_dir) / SEARCH_FILE
    if not path.is_file():
        raise SearchError(f"{search_dir}: no {SEARCH_FILE}; not an eri-fit search directory")
    return SearchPlan.from_dict(yaml.safe_load(path.read_text()))


class _Lock:
    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise SearchError(f"{path.parent}: another eri-fit --search is running in this directory") from None

    def release(self) -> None:
        os.close(self.fd)


def run_search(plan: SearchPlan, search_dir: Path, settings: SchedulerSettings, worker_env: dict[str, str],
               parallel: int = 0, on_trial: OnTrial | None = None, note: Callable[[str], None] | None = None
               ) -> dict[str, Any]:
    """Run (or continue) the search until plan.n_trials trials have finished; returns the summary."""
    import optuna
    from optuna.trial import TrialState

    search_dir = Path(search_dir)
    search_dir.mkdir(parents=True, exist_ok=True)
    lock = _Lock(search_dir / ".search.lock")
    try:
        _check_same_plan(search_dir, plan)
        (search_dir / SEARCH_FILE).write_text(yaml.safe_dump(plan.as_dict(), sort_keys=False))
        study = open_study(search_dir, plan.seed, create=True)
        if study.trials:  # a continued search must not draw the first session's random numbers again
            study = open_study(search_dir, plan.seed + len(study.trials))
        if not study.trials:
            study.enqueue_trial(default_params(plan.resolved))  # trial 0: the configuration given
        finished = {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL}
        stale = [t for t in study.trials if t.state == TrialState.RUNNING]  # a previous coordinator's
        done = sum(t.state in finished for t in study.trials)
        if stale and note:
            note(f"continuing {len(stale)} interrupted trial(s) from their last epoch: "
                 + ", ".join(str(t.number) for t in stale))
        with open_executor(settings, worker_env) as executor:
            if executor.note and note:
                note(executor.note)
            width = parallel or executor.workers or 4
            running: dict[Any, int] = {}

            def submit(number: int, trial_id: int, params: dict, resume: bool):
                task = TrialTask(str(search_dir.resolve()), number, trial_id, params, plan.base, plan.store,
                                 plan.labels, plan.partition, resume, plan.seed)
                future = executor.submit(run_trial, task)
                running[future] = number
                return future

            # optuna's ask/tell across processes needs the storage's trial id (FrozenTrial._trial_id)
            # a stale trial may have been stopped while its parameters were being drawn: drawing
            # again on the same trial keeps those already set and completes the rest
            queue = executor.as_completed([
                submit(t.number, t._trial_id, suggest(optuna.trial.Trial(study, t._trial_id), plan.space), True)
                for t in stale])

            def top_up() -> None:
                while len(running) < width and done + len(running) < plan.n_trials:
                    trial = study.ask()
                    queue.add(submit(trial.number, trial._trial_id, suggest(trial, plan.space), False))
            top_up()
            try:
                for future in queue:
                    number = running.pop(future)
                    result = _result(future, number, executor)
                    _tell(study, number, result)
                    done += 1
                    executor.release(future)
                    if on_trial:
                        on_trial(result, done, plan.n_trials)
                    raise_if_interrupted()
                    top_up()
            except BaseException:
                executor.cancel(list(running))   # their trials stay RUNNING: the next start resumes them
                raise
        return write_summary(search_dir, study)
    finally:
        lock.release()


def _result(future, number: int, executor) -> dict[str, Any]:
    try:
        return future.result()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 — one failing trial must not end the search
        log.debug("trial %d failed", number, exc_info=True)
        return {"number": number, "state": "fail", "value": None, "error": f"{type(exc).__name__}: {exc}"}


def _tell(study, number: int, result: dict[str, Any]) -> None:
    import optuna
    from optuna.trial import TrialState
    state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}[result["state"]]
    trial = optuna.trial.Trial(study, study.trials[number]._trial_id)
    for key in ("seconds", "epochs", "best_epoch", "run_dir", "error", "baseline"):
        if result.get(key) is not None:
            trial.set_user_attr(key, result[key])
    if state == TrialState.COMPLETE:
        study.tell(number, result["value"])
    else:
        study.tell(number, state=state)


def _check_same_plan(search_dir: Path, plan: SearchPlan) -> None:
    path = search_dir / SEARCH_FILE
    if not path.is_file():
        return
    old = SearchPlan.from_dict(yaml.safe_load(path.read_text()))
    if (old.base, old.space, old.seed) != (plan.base, plan.space, plan.seed):
        raise SearchError(f"{search_dir} holds a search with other settings; continue it with "
                          f"eri-fit --resume {search_dir}, or choose another --out")


def trial_rows(study) -> list[dict[str, Any]]:
    rows = []
    for t in study.trials:
        rows.append({"trial": t.number, "state": t.state.name.lower(),
                     "val_mean_pcc": t.value if t.value is not None else
                     (t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None),
                     **{k: t.params.get(k) for k in ("head", "lr", "batch_size", "hidden", "dropout")},
                     "epochs": t.user_attrs.get("epochs"), "best_epoch": t.user_attrs.get("best_epoch"),
                     "seconds": t.user_attrs.get("seconds"), "run_dir": t.user_attrs.get("run_dir"),
                     "error": t.user_attrs.get("error")})
    return rows


def write_summary(search_dir: Path, study) -> dict[str, Any]:
    from optuna.trial import TrialState
    rows = trial_rows(study)
    with (search_dir / "trials.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["trial"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    summary: dict[str, Any] = {"trials": len(study.trials),
                               "states": {s: sum(r["state"] == s for r in rows) for s in
                                          ("complete", "pruned", "fail", "running")}}
    if complete:
        best = max(complete, key=lambda t: t.value)
        best_dir = trial_dir(search_dir, best.number)
        shutil.copyfile(best_dir / "config.yaml", search_dir / "best_config.yaml")
        link = search_dir / "best"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("trials") / best_dir.name)
        summary.update(best_trial=best.number, best_value=best.value, best_params=best.params,
                       best_run_dir=str(best_dir), best_config=str(search_dir / "best_config.yaml"))
    (search_dir / "search.json").write_text(json.dumps(summary, indent=2))
    summary["rows"] = rows
    return summary
