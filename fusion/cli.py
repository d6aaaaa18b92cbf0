"""`eri-fit` (train fusion heads on stored features) and `eri-predict` (apply a run)."""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fusion.labels import LabelError, load_labels
from fusion.report import head_details, heads_lines, print_results

FIT_EXAMPLES = """examples:
  eri-fit --store eri_store --labels data_info.csv --features wav2vec2,posterv2 --head tcn_transformer
  eri-fit --labels labels.csv --partition partition.csv --features deepspectrum,resnet18_affectnet \\
          --steps 32 --steps deepspectrum=64 --seeds 5 --out runs/tcn
  eri-fit --labels labels.csv --features egemaps@3f2a9c,posterv2 --folds 5 --head lstm --epochs 60
  eri-fit --labels labels.csv --partition partition.csv --features egemaps,vggface2 --recipe hfut_2023
  eri-fit --labels labels.csv --features egemaps,vggface2 --search 32 --out runs/search   (--workers 2)
  eri-fit --resume runs/tcn       continue an interrupted run (or search) where it stopped
  eri-fit --list-heads            one line per head;  --show-head NAME  its options and recipes

Without --head the default is conv_pool (see README: why). Every run also fits a ridge baseline
on pooled statistics and says whether the model beats it.

Splits: the labels' split column (Split/Partition, or --split-column), a --partition file,
--folds K cross-validation, or else a random --val-fraction hold-out. Clips of the test
split (and unlabelled clips) are predicted by the ensemble into predictions_test.csv.
Option precedence: defaults < the head's training < --recipe < --config YAML < flags.
"""

PREDICT_EXAMPLES = """examples:
  eri-predict --run runs/tcn --store eri_store --input test_ids.txt --output predictions.csv
  eri-predict --run runs/tcn --store eri_store --input test --labels data_info.csv
The features are read at the fingerprints the run was trained on. With --labels whose
rows for these clips carry values, the per-emotion PCC is printed as well.
"""


def _kv(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what}: expected NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _scalar_or_kv(items: list[str] | None, what: str, cast: Any) -> tuple[Any, dict[str, Any]]:
    """`--steps 32 --steps deepspectrum=64` -> (32, {"deepspectrum": 64})."""
    default, per = None, {}
    for item in items or []:
        if "=" in item:
            per.update({k: cast(v) for k, v in _kv([item], what).items()})
        else:
            default = cast(item)
    return default, per


def fit_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eri-fit", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=FIT_EXAMPLES,
        description="Train an Emotional Reaction Intensity fusion head on features from the store; "
                    "writes a run directory (config, metrics, checkpoints, predictions, plots).")
    p.add_argument("--list-heads", action="store_true", help="list the heads, one line each, and exit")
    p.add_argument("--resume", type=Path, metavar="RUN",
                   help="continue the interrupted run RUN from its last epoch (same configuration, "
                        "same result as an uninterrupted run); --store/--labels/--partition only if moved")
    p.add_argument("--show-head", metavar="NAME", help="show a head's options and training recipe and exit")
    g = p.add_argument_group("data")
    g.add_argument("--store", type=Path, help="feature store root (default: $ERI_STORE or ./eri_store)")
    g.add_argument("--labels", type=Path, help="labels CSV (File_ID/id + the 7 emotion columns)")
    g.add_argument("--features", help="comma-separated features, each NAME or NAME@FINGERPRINT")
    g.add_argument("--split-column", help="name of the labels' split column (default: Split/Partition)")
    g.add_argument("--partition", type=Path, help="separate CSV of id,split")
    g.add_argument("--folds", type=int, help="K-fold cross-validation over the labelled clips")
    g.add_argument("--val-fraction", type=float, help="hold-out share when there is no split (0.2)")
    g.add_argument("--label-scale", type=float, help="divide label values by this (100 for percentages)")
    g.add_argument("--steps", action="append", metavar="N|NAME=N",
                   help="time steps per clip (default 32); repeat as NAME=N per feature")
    g.add_argument("--length", action="append", metavar="P|NAME=P",
                   help="length policy: resample (default) or pad (truncate/pad with masks); NAME=P per feature")
    g.add_argument("--missing", choices=["error", "drop", "zeros"],
                   help="clips missing a feature: error (default), drop them, or zero-fill")
    g.add_argument("--modality", action="append", metavar="NAME=audio|video",
                   help="override a feature's modality (else from its spec)")
    g.add_argument("--no-standardize", dest="standardize", action="store_false", default=None,
                   help="do not standardise features with train statistics")
    m = p.add_argument_group("model and training")
    m.add_argument("--head", help="fusion head (see --list-heads; default conv_pool)")
    m.add_argument("--recipe", help="named training recipe, e.g. a paper's (dual_branch_2023, hfut_2023; "
                                    "see --show-head); implies its head")
    m.add_argument("--head-opt", action="append", metavar="KEY=VALUE", help="head option (repeatable)")
    m.add_argument("--config", type=Path, help="YAML config (keys as in a run's config.yaml)")
    m.add_argument("--loss", help="e.g. mse, pcc, ccc, mse+0.01*class (default mse)")
    m.add_argument("--epochs", type=int, help="maximum epochs (default 100)")
    m.add_argument("--batch-size", type=int)
    m.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    m.add_argument("--weight-decay", type=float)
    m.add_argument("--ema", type=float, help="EMA decay of weights, 0 = off (av_interaction: 0.99)")
    m.add_argument("--grad-clip", type=float, help="max gradient norm, 0 = off")
    m.add_argument("--patience", type=int, help="early stopping patience in epochs (default 15)")
    m.add_argument("--lr-patience", type=int, help="epochs before halving the LR (default 5)")
    m.add_argument("--seed", type=int, help="first seed (default 0)")
    m.add_argument("--seeds", type=int, help="models per split; reports mean ± std and the ensemble")
    m.add_argument("--threads", type=int, help="torch CPU threads (default 0 = the cores not already busy, see README)")
    s = p.add_argument_group("hyper-parameter search (eri-fit --search N; see README)")
    s.add_argument("--search", type=int, metavar="N",
                   help="run N Optuna trials (TPE, median pruning on val PCC per epoch); the study lives in "
                        "--out, so the same command (or --resume OUT) continues an interrupted search")
    s.add_argument("--search-heads", help="comma-separated heads to choose among (default: --head)")
    s.add_argument("--search-space", type=Path, metavar="YAML",
                   help="override the space: lr: [lo, hi], batch_size: [..], hidden: [..], dropout: [lo, hi]")
    s.add_argument("--search-parallel", type=int, default=0, metavar="K",
                   help="trials in flight at once (default: the scheduler's workers, or 4)")
    s.add_argument("--scheduler", default="local",
                   help="where trials run: local (a LocalCluster on 127.0.0.1, default) | sync (in this "
                        "process) | tcp://HOST:PORT (an existing Dask cluster; paths must be shared)")
    s.add_argument("--workers", type=int, default=0, help="worker processes for --scheduler local (0 = cores / threads)")
    s.add_argument("--cluster", choices=["slurm"], help="start the workers as SLURM jobs (dask-jobqueue)")
    s.add_argument("--cluster-config", type=Path, help="YAML of SLURM options (as for eri-extract)")
    for flag, kind, what in (("--queue", str, "SLURM partition"), ("--account", str, "SLURM account"),
                             ("--cores", int, "CPUs per SLURM job"), ("--processes", int, "workers per SLURM job"),
                             ("--memory", str, "memory per SLURM job, e.g. 16GB"),
                             ("--walltime", str, "wall time per SLURM job, HH:MM:SS"),
                             ("--jobs", int, "SLURM jobs at once")):
        s.add_argument(flag, type=kind, help=what)
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, help="run directory (default runs/<head>-<time>)")
    o.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    o.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _overrides(a: argparse.Namespace) -> dict[str, Any]:
    steps, steps_per = _scalar_or_kv(a.steps, "--steps", int)
    length, length_per = _scalar_or_kv(a.length, "--length", str)
    return {"features": a.features, "head": a.head, "recipe": a.recipe,
            "head_options": _kv(a.head_opt, "--head-opt"),
            "split_column": a.split_column, "folds": a.folds, "val_fraction": a.val_fraction,
            "label_scale": a.label_scale, "steps": steps, "steps_per_feature": steps_per,
            "length": length, "length_per_feature": length_per, "missing": a.missing,
            "modalities": _kv(a.modality, "--modality"), "standardize": a.standardize,
            "loss": a.loss, "epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr,
            "weight_decay": a.weight_decay, "ema": a.ema, "grad_clip": a.grad_clip,
            "patience": a.patience, "lr_patience": a.lr_patience, "seed": a.seed,
            "seeds": a.seeds, "threads": a.threads}


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


_RESUME_ALLOWED = {"store", "labels", "partition", "resume", "out", "no_plots", "quiet", "verbose"}
_SCHEDULER_FLAGS = {"scheduler", "workers", "cluster", "cluster_config", "queue", "account", "cores",
                    "processes", "memory", "walltime", "jobs", "search_parallel"}


def _resume_plan(args: argparse.Namespace):
    """(cfg, store, labels, partition, out) of `eri-fit --resume RUN`."""
    from fusion.config import resolve_config
    from fusion.resume import read_resume_inputs
    defaults = fit_parser().parse_args([])
    changed = sorted(k for k, v in vars(args).items() if k not in _RESUME_ALLOWED and v != getattr(defaults, k))
    if changed:
        raise ValueError(f"--resume keeps the run's configuration; drop {', '.join('--' + c.replace('_', '-') for c in changed)}")
    if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
        raise ValueError("--resume writes into the run directory itself; drop --out")
    r = read_resume_inputs(args.resume, args.store, args.labels, args.partition)
    cfg = resolve_config(None, {**r.config, "threads": r.threads or r.config.get("threads")})
    return cfg, r.store, r.labels, r.partition, Path(args.resume)


def fit_main(argv: list[str] | None = None) -> int:
    from pipelines.interrupts import catch_interrupts
    with catch_interrupts():
        return _fit(argv)


def _fit(argv: list[str] | None) -> int:
    args = fit_parser().parse_args(argv)
    console = Console()
    _setup_logging(args.verbose)
    if args.list_heads:
        print("\n".join(heads_lines()))
        return 0
    from fusion.config import resolve_config
    from fusion.experiment import run_fit
    from feature_store import StoreError, default_store_path
    try:
        if args.show_head:
            print("\n".join(head_details(args.show_head)))
            return 0
        if args.search is not None or (args.resume is not None and (Path(args.resume) / "search.yaml").is_file()):
            from fusion.search_cli import search_main
            return search_main(args, _overrides(args), console)
        if args.resume is not None:
            cfg, store, labels, partition, out = _resume_plan(args)
        else:
            if args.labels is None:
                raise ValueError("--labels is required")
            cfg = resolve_config(args.config, _overrides(args))
            out = args.out or Path("runs") / f"{cfg.head}-{dt.datetime.now():%Y%m%d-%H%M%S}"
            store, labels, partition = args.store or default_store_path(), args.labels, args.partition
        n_models = cfg.seeds * (cfg.folds or 1)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, disable=args.quiet) as bar:
            task = bar.add_task("loading features", total=cfg.epochs * n_models)
            done: dict[str, int] = {}

            def on_epoch(name: str, rec: dict) -> None:
                done[name] = rec["epoch"]
                bar.update(task, completed=(len(done) - 1) * cfg.epochs + rec["epoch"],
                           description=f"{name} epoch {rec['epoch']} val PCC {rec['val_mean_pcc']:.4f} "
                                       f"(best {rec['best_val_mean_pcc']:.4f})")
            outcome = run_fit(cfg, store, labels, out, partition=partition, on_epoch=on_epoch,
                              plots=not args.no_plots, resume=args.resume is not None)
    except (LabelError, StoreError, ValueError, FileNotFoundError, KeyError) as exc:
        console.print(f"[red]eri-fit: {exc}[/]")
        return 2
    except KeyboardInterrupt:
        where = args.resume or locals().get("out")
        console.print(f"[yellow]eri-fit: interrupted; finished epochs are saved. Continue with "
                      f"eri-fit --resume {where}[/]")
        return 130
    print_results(outcome.metrics, console)
    console.print(f"run directory: {outcome.run_dir}")
    return 0


ENSEMBLE_EXAMPLES = """examples:
  eri-ensemble runs/conv runs/tcn runs/av --out runs/ens
  eri-ensemble runs/* --out runs/ens --select greedy
Members may differ in head, features and seeds but must predict the same validation and test
clips. Validation targets come from the labels the first run was trained with (override with
--labels/--partition). `eri-predict --run runs/ens` predicts with the selected members.
"""


def ensemble_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eri-ensemble", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=ENSEMBLE_EXAMPLES,
        description="Average the validation and test predictions of several eri-fit runs (optionally "
                    "choosing members by greedy forward selection on validation mean PCC); writes "
                    "predictions in the challenge layout and metrics like a run.")
    p.add_argument("runs", nargs="+", type=Path, help="run directories written by eri-fit")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--select", choices=["mean", "greedy"], default="mean",
                   help="mean: every member (default); greedy: forward selection by val mean PCC")
    p.add_argument("--labels", type=Path, help="labels CSV for the validation targets (default: the first run's)")
    p.add_argument("--partition", type=Path, help="partition CSV for --labels")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def ensemble_main(argv: list[str] | None = None) -> int:
    args = ensemble_parser().parse_args(argv)
    console = Console()
    _setup_logging(args.verbose)
    from rich.table import Table

    from fusion.ensemble import EnsembleError, build_ensemble
    try:
        metrics = build_ensemble(args.runs, args.out, args.select, args.labels, args.partition)
    except (EnsembleError, LabelError, ValueError, FileNotFoundError) as exc:
        console.print(f"[red]eri-ensemble: {exc}[/]")
        return 2
    members = Table(title="members (validation mean PCC)")
    for col in ("run", "head", "val mean PCC", "selected"):
        members.add_column(col, justify="right" if col != "run" else "left")
    for m in metrics["members"]:
        members.add_row(m["label"], m["head"], f"{m['val']['mean_pcc']:.4f}", str(m["selected"]))
    console.print(members)
    if metrics["selection"]:
        sel = Table(title="greedy forward selection")
        for col in ("step", "added", "ensemble val mean PCC"):
            sel.add_column(col)
        for s in metrics["selection"]:
            sel.add_row(str(s["step"]), s["added"], f"{s['val_mean_pcc']:.4f}")
        console.print(sel)
    print_results(metrics, console)
    console.print(f"ensemble directory: {args.out}")
    return 0


def predict_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eri-predict", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=PREDICT_EXAMPLES,
        description="Predict the 7 emotion intensities for clips in the store with a trained run "
                    "(the average of its models); writes a CSV in the challenge layout.")
    p.add_argument("--run", type=Path, required=True, help="run directory written by eri-fit")
    p.add_argument("--store", type=Path, help="feature store root (default: $ERI_STORE or ./eri_store)")
    p.add_argument("--input", required=True,
                   help="file of clip ids (one per line), or a split name (train/val/test/all) "
                        "taken from --labels")
    p.add_argument("--labels", type=Path, help="labels CSV (for a split name, and to score labelled clips)")
    p.add_argument("--partition", type=Path, help="partition CSV for --labels")
    p.add_argument("--output", type=Path, default=Path("predictions.csv"), help="output CSV")
    p.add_argument("--missing", choices=["error", "drop", "zeros"],
                   help="clips missing a feature (default: as in training)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def predict_main(argv: list[str] | None = None) -> int:
    args = predict_parser().parse_args(argv)
    console = Console()
    _setup_logging(args.verbose)
    import numpy as np
    from feature_store import StoreError, default_store_path
    from fusion.metrics import score
    from fusion.predict import predict_run
    from fusion.rundir import read_ids_file_spelled, write_predictions
    try:
        labels = load_labels(args.labels, partition=args.partition) if args.labels else None
        spelling = labels.spelling() if labels is not None else {}  # write ids as the user's file did
        if Path(args.input).is_file():
            from_file = read_ids_file_spelled(Path(args.input))
            ids = list(from_file)
            spelling.update(from_file)
        elif args.input in ("train", "val", "test", "all"):
            if labels is None:
                raise ValueError(f"--input {args.input} is a split name: give --labels too")
            ids = list(labels.ids) if args.input == "all" else labels.ids_in(args.input)
            if not ids:
                raise ValueError(f"no clips of split {args.input!r} in {args.labels}")
        else:
            raise ValueError(f"--input {args.input!r} is neither a file nor a split name")
        pred = predict_run(args.run, args.store or default_store_path(), ids, args.missing)
    except (LabelError, StoreError, ValueError, FileNotFoundError, KeyError) as exc:
        console.print(f"[red]eri-predict: {exc}[/]")
        return 2
    write_predictions(args.output, pred.ids, pred.values, spelling)
    console.print(f"{len(pred.ids)} clips predicted with {len(pred.models)} model(s) -> {args.output}")
    for kind, per in (("dropped", pred.dropped), ("zero-filled", pred.zero_filled)):
        for feat, gone in per.items():
            console.print(f"[yellow]{len(gone)} clip(s) {kind} for missing {feat}[/]")
    if labels is not None:
        pos = labels.index()
        rows = [pos[c] for c in pred.ids if c in pos]
        keep = [i for i, c in enumerate(pred.ids) if c in pos]
        true = labels.values[rows]
        ok = ~np.isnan(true).any(axis=1)
        if ok.sum() >= 2:
            sc = score(pred.values[keep][ok], true[ok])
            console.print(" ".join(f"{e}={v:.4f}" for e, v in sc.per_emotion.items())
                          + f"  mean PCC={sc.mean:.4f} ({int(ok.sum())} labelled clips)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(fit_main())
