"""The `eri-fit --search N` command: options -> a search plan -> pipelines.fit_search, printed
for humans (one line per finished trial, then the table of trials and the best one)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from fusion.labels import LabelError


def _pinned_features(store: Path, refs: list[str]) -> list[str]:
    """NAME -> NAME@FINGERPRINT, so every trial reads the same data."""
    from feature_store import FeatureStore
    fs = FeatureStore(store)
    return [f"{r.partition('@')[0]}@{fs.resolve(r).fingerprint}" for r in refs]


def _plan(args: argparse.Namespace, overrides: dict[str, Any]):
    from feature_store import default_store_path
    from fusion.config import read_yaml_config, resolve_config
    from fusion.search import default_params, read_space
    from pipelines.fit_search import SearchPlan, read_plan

    if args.resume is not None:
        plan = read_plan(args.resume)
        if args.search is not None:
            plan.n_trials = args.search
        return plan, Path(args.resume)
    if args.labels is None:
        raise ValueError("--labels is required")
    if args.search < 1:
        raise ValueError(f"--search needs a positive number of trials, got {args.search}")
    if args.folds:
        raise ValueError("--search scores trials on one validation split; drop --folds")
    given = {**(read_yaml_config(args.config) if args.config else {}),
             **{k: v for k, v in overrides.items() if v not in (None, {}, "")}}
    resolved = resolve_config(None, given)
    store = Path(args.store or default_store_path())
    base = {**given, "head": resolved.head, "features": _pinned_features(store, resolved.features)}
    heads = [h.strip() for h in args.search_heads.split(",") if h.strip()] if args.search_heads else None
    space = read_space(args.search_space, heads).validate(resolved.head)
    space = space.including(default_params(resolved.to_dict()))
    out = args.out or Path("runs") / "search"
    plan = SearchPlan(args.search, base, resolved.to_dict(), space, str(store.resolve()),
                      str(Path(args.labels).resolve()),
                      str(Path(args.partition).resolve()) if args.partition else None, resolved.seed)
    return plan, Path(out)


def _settings(args: argparse.Namespace, base_threads: int):
    from pipelines.schedulers import build_settings
    from pipelines.schedulers.slurm import load_options

    flags = {"queue": args.queue, "account": args.account, "cores": args.cores, "processes": args.processes,
             "memory": args.memory, "walltime": args.walltime, "jobs": args.jobs, "job_name": "eri-fit-search"}
    slurm = load_options(args.cluster_config, flags) if args.cluster == "slurm" else {}
    return build_settings(args.scheduler, args.cluster, args.workers, base_threads or 0, 1, False, slurm,
                          args.verbose)


def search_main(args: argparse.Namespace, overrides: dict[str, Any], console: Console) -> int:
    from feature_store import StoreError
    from pipelines.fit_search import SearchError, run_search
    from pipelines.schedulers.slurm import ClusterConfigError

    try:
        plan, out = _plan(args, overrides)
        settings, threads = _settings(args, int(plan.base.get("threads") or 0))
        plan.base["threads"] = threads
        console.print(f"search: {plan.n_trials} trial(s) of {', '.join(plan.space.heads)} on {settings.kind} "
                      f"({settings.workers if settings.kind in ('local', 'sync') else '?'} worker(s) x "
                      f"{threads} thread(s)); study in {out}")

        def on_trial(r: dict, done: int, n: int) -> None:
            value = "-" if r.get("value") is None else f"{r['value']:.4f}"
            extra = f" ({r['error']})" if r.get("error") else ""
            seconds = f" {r['seconds']:.0f} s" if r.get("seconds") else ""
            console.print(f"[{done}/{n}] trial {r['number']}: {r['state']} val mean PCC {value}{seconds}{extra}")
        summary = run_search(plan, out, settings, {"OMP_NUM_THREADS": str(threads)}, args.search_parallel,
                             on_trial, lambda line: console.print(f"[dim]{line}[/]"))
    except (SearchError, ClusterConfigError, LabelError, StoreError, ValueError, FileNotFoundError,
            KeyError, ConnectionError) as exc:
        console.print(f"[red]eri-fit: {exc}[/]")
        return 2
    except KeyboardInterrupt:
        console.print(f"[yellow]eri-fit: search interrupted; finished trials and epochs are saved. "
                      f"Continue with eri-fit --resume {locals().get('out', args.out)}[/]")
        return 130
    print_search(summary, console)
    console.print(f"search directory: {out}")
    return 0


def print_search(summary: dict, console: Console) -> None:
    """The table of trials, one line each (plain text: it must fit 80 columns), best in bold."""
    console.print(f"[bold]{summary['trials']} trial(s)[/]  (PCC: val mean PCC; ep: epochs run)")
    head = f"{'trial':>5} {'state':<9}{'PCC':>7}  {'head':<14} {'lr':>7} {'batch':>5} {'hidden':>6} {'drop':>5} {'ep':>4} {'s':>5}"
    console.print(head, highlight=False)
    best = summary.get("best_trial")

    def fmt(v, spec: str) -> str:
        return "-" if v is None else format(v, spec)
    for r in summary["rows"]:
        line = (f"{r['trial']:>5} {r['state']:<9}{fmt(r['val_mean_pcc'], '7.4f')}  {str(r['head']):<14} "
                f"{fmt(r['lr'], '7.1e')} {fmt(r['batch_size'], '>5')} {fmt(r['hidden'], '>6')} "
                f"{fmt(r['dropout'], '5.2f')} {fmt(r['epochs'], '>4')} {fmt(r['seconds'], '5.0f')}")
        console.print(f"[bold green]{line}[/]" if r["trial"] == best else line, highlight=False)
    if best is not None:
        console.print(f"best: trial {best}, val mean PCC {summary['best_value']:.4f}; run directory "
                      f"{summary['best_run_dir']}; config {summary['best_config']} (eri-fit --config)")
