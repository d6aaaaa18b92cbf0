"""Human-readable listings for eri-extract: the feature catalog and the plan."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from extract.catalog import catalog
from pipelines.dataset import Discovery
from pipelines.estimate import WorkEstimate
from pipelines.plan import Plan


def print_features(console: Console, options: bool = False) -> None:
    table = Table(title="registered features (rows and steps under the default config)")
    for col in ("name", "modality", "row", "step (s)", "weights", "description"):
        table.add_column(col, no_wrap=col != "description", overflow="fold")
    for spec in catalog():
        shape = spec.output_shape()
        step = "per frame" if shape.frame_step is None else f"{shape.frame_step:g}"
        row = "×".join(map(str, shape.row))
        table.add_row(spec.name, spec.modality, row, step, "\n".join(spec.weights_entries()) or "-",
                      _first_clause(spec.description))
    console.print(table)
    if not options:
        console.print("(with -v: each feature's options and defaults, for --set FEATURE.OPTION=VALUE)")
        return
    for spec in catalog():
        config = spec.default_config
        listed = ", ".join(f"{k}={v!r}" for k, v in config.items()) or "no options"
        console.print(f"[bold]{spec.name}[/]: {listed}", highlight=False)
    console.print("every float feature also takes dtype=float16 (storage: half the disk; read back as float32)")


def _first_clause(text: str, limit: int = 60) -> str:
    """The description up to its first ';' or ':' (or sentence end), at most `limit` characters."""
    for mark in (";", ": ", ". "):
        text = text.split(mark)[0]
    return text if len(text) <= limit else text[:limit - 1] + "…"


def print_plan(plan: Plan, estimate: WorkEstimate, console: Console, found: Discovery | None = None) -> None:
    table = Table(title=f"plan over {len(plan.clips)} clips")
    for col in ("feature", "fingerprint", "to compute", "source changed", "cached",
                "failed before (not retried)"):
        table.add_column(col, justify="left" if col in ("feature", "fingerprint") else "right")
    for job in plan.jobs:
        table.add_row(job.name, job.fingerprint, str(len(job.todo)), str(job.stale), str(job.cached),
                      str(len(job.failed_before)))
    console.print(table)
    console.print(f"work: {estimate.describe()}", highlight=False)
    if found is not None:
        for line in found.skipped_summary():
            console.print(f"[yellow]not taken[/]: {line}", highlight=False)
        failed = list(found.failed.items())
        for clip_id, failure in failed[:10]:
            console.print(f"[red]cannot use clip {clip_id}[/]: {failure.reason}", highlight=False)
        if len(failed) > 10:
            console.print(f"… and {len(failed) - 10} more clip(s) that cannot be used (--summary-json lists them)")
    for name, why in plan.skipped.items():
        console.print(f"[yellow]skipped {name}[/]: {_short_reason(why)}", highlight=False)
    if plan.skipped:
        console.print("(`eri-weights info ENTRY` shows where each was looked for and how to get it)")
    if any(j.failed_before for j in plan.jobs):
        console.print("clips that failed before are not retried unless their file changed; "
                      "add --rerun-failed to retry them")


def _short_reason(why: str) -> str:
    """The first line of a resolver message plus its fetch/import commands: one short block per feature."""
    lines = [ln.strip() for ln in why.splitlines() if ln.strip()]
    commands = [ln for ln in lines[1:] if ln.startswith(("Fetch it:", "Import it:", "or import"))]
    return "\n    ".join(lines[:1] + commands)
