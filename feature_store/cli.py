"""`eri-store`: look after the HDF5 feature store (list, inspect, verify, compact, CSV interop)."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from feature_store.compact import CompactBusy, compact_dir
from feature_store.csv_io import export_csv, feature_sources, import_csv
from feature_store.store import DEFAULT_STORE, FeatureStore, StoreError
from feature_store.summary import feature_info, summarize_dir
from feature_store.verify import verify_dirs

app = typer.Typer(
    help="Look after the eri-pipeline feature store: `STORE/FEATURE/FINGERPRINT/` holding `spec.json`, "
         "`shard-*.h5` files (one group per clip: data (T, dim), times (T,) in seconds, provenance and QA "
         "attributes) and `errors.jsonl` (clips that failed). A feature is named FEATURE (its only "
         "fingerprint) or FEATURE@FP (FP may be a unique prefix). The store is --store, else $ERI_STORE, "
         f"else ./{DEFAULT_STORE}.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode="markdown")
out = Console()
err = Console(stderr=True)

StoreOpt = Annotated[Path, typer.Option("--store", envvar="ERI_STORE", help="Store root directory.",
                                        show_default=True)]
DEFAULT = Path(DEFAULT_STORE)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _open(store: Path) -> FeatureStore:
    if not store.is_dir():
        _fail(f"store {store} does not exist (set --store or $ERI_STORE)")
    return FeatureStore(store)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


@app.command("ls")
def ls_cmd(store: StoreOpt = DEFAULT) -> None:
    """List features and fingerprints with clip counts, shards, size and failed clips."""
    fs = _open(store)
    table = Table(title=f"feature store {store}")
    for col in ("feature", "fingerprint", "clips", "shards", "size", "errors", "created"):
        table.add_column(col, justify="right" if col in ("clips", "shards", "size", "errors") else "left")
    for fd in fs.feature_dirs():
        s = summarize_dir(fd)
        table.add_row(s.feature, s.fingerprint, str(s.clips), str(s.shards), _mib(s.size_bytes),
                      str(s.errors), s.created[:16].replace("T", " "))
    out.print(table)


@app.command("info")
def info_cmd(ref: Annotated[str, typer.Argument(help="FEATURE or FEATURE@FP")], store: StoreOpt = DEFAULT) -> None:
    """Show a feature's spec, shapes, T statistics and QA summary.

    T is the number of rows per clip. The QA summary is the mean over clips of each numeric per-clip
    attribute (e.g. face_detection_rate, duration) and the number of flagged clips."""
    fs = _open(store)
    try:
        reader = fs.reader(ref)
    except StoreError as exc:
        _fail(str(exc))
    with reader:
        info = feature_info(reader)
        fd = reader.dir
        out.print(f"[bold]{reader.feature}@{reader.fingerprint}[/bold]  {fd.path}")
        out.print_json(json.dumps(reader.spec))
        out.print(f"clips: {info.clips}   shards: {len(fd.shards())}   size: {_mib(fd.size_bytes())}   "
                  f"failed clips: {len(fd.failed())}")
        out.print(f"row shape(s): {info.row_shapes}   dtype(s): {info.dtypes}   extras: {info.extras or '-'}")
        if info.t_stats:
            out.print("T per clip: " + "  ".join(f"{k} {v:g}" for k, v in info.t_stats.items()))
        table = Table(title="QA (mean over clips)")
        table.add_column("attribute")
        table.add_column("mean", justify="right")
        for key, value in info.qa_means.items():
            table.add_row(key, f"{value:.4g}")
        table.add_row("flagged clips", str(info.flagged))
        out.print(table)


@app.command("verify")
def verify_cmd(refs: Annotated[Optional[list[str]], typer.Argument(help="FEATURE or FEATURE@FP, several allowed (default: all)")] = None,
               store: StoreOpt = DEFAULT) -> None:
    """Check every shard and every clip item; exit 1 on problems.

    Every shard must open; every clip's data and times must be finite and of the shape and dtype the
    spec declares. Each problem is printed. Clips held by more than one shard (the newest shard wins)
    and leftover temporaries are reported as info, not problems."""
    fs = _open(store)
    try:
        dirs = [fs.resolve(r) for r in refs] if refs else fs.feature_dirs()
    except StoreError as exc:
        _fail(str(exc))
    report = verify_dirs(dirs)
    for line in report.info:
        out.print(f"[cyan]info:[/cyan] {line}", highlight=False)
    for line in report.problems:
        out.print(f"[red]problem:[/red] {line}", highlight=False)
    summary = f"{len(dirs)} feature dir(s), {report.shards} shard(s), {report.clips} clip item(s)"
    if report.problems:
        out.print(f"[red]FAILED[/red]: {len(report.problems)} problem(s) in {summary}")
        raise typer.Exit(1)
    out.print(f"[green]OK[/green]: {summary}")


@app.command("compact")
def compact_cmd(ref: Annotated[Optional[str], typer.Argument(help="FEATURE or FEATURE@FP")] = None,
                all_: Annotated[bool, typer.Option("--all", help="Compact every feature directory.")] = False,
                store: StoreOpt = DEFAULT) -> None:
    """Merge a feature's shards into one file, dropping duplicates.

    The merged shard is written under a temporary name and renamed atomically; only then are the
    old shards removed, so an interrupted compact never loses or doubles a clip for readers.
    Duplicate copies of a clip keep the newest shard's copy. Arrays are copied byte for byte."""
    fs = _open(store)
    if bool(ref) == all_:
        _fail("give exactly one of FEATURE[@FP] or --all")
    try:
        dirs = fs.feature_dirs() if all_ else [fs.resolve(ref)]
        for fd in dirs:
            r = compact_dir(fd)
            out.print(f"{r.feature}@{r.fingerprint}: {r.shards_before} shard(s) → {1 if r.merged else r.shards_before}, "
                      f"{r.clips} clips, {r.duplicates_dropped} duplicate(s) dropped, "
                      f"{_mib(r.bytes_before)} → {_mib(r.bytes_after)}")
    except (StoreError, CompactBusy) as exc:
        _fail(str(exc))


@app.command("export-csv")
def export_cmd(ref: Annotated[str, typer.Argument(help="FEATURE or FEATURE@FP")],
               outdir: Annotated[Path, typer.Argument(help="Writes `OUTDIR/FEATURE/ID.csv`")],
               store: StoreOpt = DEFAULT) -> None:
    """Export a feature as MuSe/Hume per-clip CSVs.

    Writes `OUTDIR/FEATURE/ID.csv` with header `id,timestamp,FEATURE_0,...`, timestamps in
    seconds, values with 9 significant digits so float32 data round-trips exactly. Token sets
    (rows of N tokens × D) are flattened token-major into columns `FEATURE_n_d`; import-csv
    restores them."""
    fs = _open(store)
    try:
        with fs.reader(ref) as reader:
            folder = export_csv(reader, outdir)
            out.print(f"exported {len(reader)} clips of {reader.feature}@{reader.fingerprint} to {folder}")
    except StoreError as exc:
        _fail(str(exc))


@app.command("import-csv")
def import_cmd(directory: Annotated[Path, typer.Argument(help="`DIR` holding `FEATURE/*.csv` folders, or a CSV folder itself")],
               feature: Annotated[Optional[str], typer.Option(
                   "--feature", help="Import only the sub-folder FEATURE of DIR; or, when DIR itself holds the "
                                     "CSVs, store them under this name. Default: every sub-folder holding CSVs, "
                                     "each as the feature named after its folder.")] = None,
               unit: Annotated[str, typer.Option("--timestamp-unit", help="Unit of the timestamp column: s or ms.")] = "s",
               dtype: Annotated[str, typer.Option("--dtype", help="Storage dtype: float32, or float16 (half the disk; "
                                                                 "read back as float32).")] = "float32",
               store: StoreOpt = DEFAULT) -> None:
    """Import MuSe/Hume per-clip CSVs (`feats/<Feature>/<id>.csv`) as features.

    `eri-store import-csv feats/` imports every `feats/<Feature>/` folder, each as its own feature,
    and prints one line per feature. Each CSV has a header `File_ID,timestamp,f1,f2,...` (id column
    `File_ID`, `id` or `clip_id`; without one the file name is the id). Ids are made canonical:
    `[00001]` is stored as `00001`. The fingerprint is a hash of the CSV files themselves, so
    importing the same files again skips the clips already imported. spec.json records dim,
    columns, the median frame step and the source folder. A folder or file that cannot be read
    is reported (and recorded in errors.jsonl) without stopping the others; the exit code is 1
    if anything failed."""
    try:
        sources = feature_sources(directory, feature)
    except StoreError as exc:
        _fail(str(exc))
    store.mkdir(parents=True, exist_ok=True)
    fs, problems = FeatureStore(store), []
    for name, folder in sources:
        try:
            with Progress(TextColumn(f"importing {name}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err, transient=True) as bar:
                task = bar.add_task(name, total=sum(1 for _ in folder.glob("*.csv")))
                r = import_csv(fs, folder, name, unit, progress=lambda n: bar.advance(task, n), dtype=dtype)
        except (StoreError, ValueError, OSError) as exc:
            out.print(f"[red]{name}[/red]: not imported: {exc}", highlight=False, soft_wrap=True)
            problems.append(f"{name} (not imported)")
            continue
        step = r.spec.get("frame_step")
        out.print(f"{name}@{r.feature_dir.fingerprint}: imported {r.imported}, already present {r.skipped}, "
                  f"failed {len(r.failed)}  (dim {r.spec.get('dim')}, frame step "
                  f"{'-' if step is None else f'{step:g} s'}, from {folder})", highlight=False, soft_wrap=True)
        for clip, reason in list(r.failed.items())[:10]:
            out.print(f"[red]failed:[/red] {name} {clip}: {reason}", highlight=False, soft_wrap=True)
        if len(r.failed) > 10:
            out.print(f"[red]failed:[/red] {name}: ... and {len(r.failed) - 10} more (see {r.feature_dir.errors_path})",
                      highlight=False, soft_wrap=True)
        if r.failed:
            problems.append(f"{name} ({len(r.failed)} clip(s))")
    if problems:
        out.print(f"[red]failures in[/red]: {', '.join(problems)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command("clean")
def clean_cmd(stale_after: Annotated[float, typer.Option(help="Also remove unlocked temporaries older "
                                                               "than this many seconds (writers on other hosts).")] = 900,
              store: StoreOpt = DEFAULT) -> None:
    """Remove temporary shard files left by dead writers.

    A temporary is removed only when no process holds its lock and either its writer ran on this
    host and has exited, or it is older than --stale-after seconds."""
    fs = _open(store)
    removed = [p for fd in fs.feature_dirs() for p in fd.clean_temporaries(stale_after)]
    out.print(f"removed {len(removed)} leftover temporary file(s)")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
