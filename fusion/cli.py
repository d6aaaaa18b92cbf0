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
  eri-fit --list-heads            one line per head;  --show-head NAME  its options and recipe

Splits: the labels' split column (Split/Partition, or --split-column), a --partition file,
--folds K cross-validation, or else a random --val-fraction hold-out. Clips of the test
split (and unlabelled clips) are predicted by the ensemble into predictions_test.csv.
Option precedence: defaults < the head's recipe < --config YAML < flags.
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
    m.add_argument("--head", help="fusion head (see --list-heads; default lstm)")
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
    m.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, help="run directory (default runs/<head>-<time>)")
    o.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    o.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _overrides(a: argparse.Namespace) -> dict[str, Any]:
    steps, steps_per = _scalar_or_kv(a.steps, "--steps", int)
    length, length_per = _scalar_or_kv(a.length, "--length", str)
    return {"features": a.features, "head": a.head, "head_options": _kv(a.head_opt, "--head-opt"),
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


def fit_main(argv: list[str] | None = None) -> int:
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
        if args.labels is None:
            raise ValueError("--labels is required")
        cfg = resolve_config(args.config, _overrides(args))
        out = args.out or Path("runs") / f"{cfg.head}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        store = args.store or default_store_path()
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
            outcome = run_fit(cfg, store, args.labels, out, partition=args.partition,
                              on_epoch=on_epoch, plots=not args.no_plots)
    except (LabelError, StoreError, ValueError, FileNotFoundError, KeyError) as exc:
        console.print(f"[red]eri-fit: {exc}[/]")
        return 2
    print_results(outcome.metrics, console)
    console.print(f"run directory: {outcome.run_dir}")
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
