"""Console summaries for humans (rich tables); the CLI prints these."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from fusion.heads import list_heads
from fusion.labels import EMOTION_COLUMNS, EMOTIONS


def results_table(metrics: dict) -> Table:
    single, ens, test = metrics["single"], metrics["ensemble"], metrics.get("test")
    base = (metrics.get("baseline") or {}).get("val") if metrics["head"] != "ridge" else None
    n = single["n_models"]
    title = metrics["head"] + (f" (recipe {metrics['recipe']})" if metrics.get("recipe") else "")
    table = Table(title=f"{title} — {metrics['how']}")
    table.add_column("emotion")
    table.add_column(f"single model (n={n}) mean ± std", justify="right")
    table.add_column("ensemble (val)" if n > 1 else "val", justify="right")
    if base:
        table.add_column("ridge baseline (val)", justify="right")
    if test:
        table.add_column("test", justify="right")
    for e, col in zip(EMOTIONS, EMOTION_COLUMNS):
        row = [col, f"{single['pcc_mean'][e]:.4f} ± {single['pcc_std'][e]:.4f}", f"{ens['pcc'][e]:.4f}"]
        if base:
            row.append(f"{base['pcc'][e]:.4f}")
        if test:
            row.append(f"{test['pcc'][e]:.4f}")
        table.add_row(*row)
    last = ["mean PCC", f"{single['mean_pcc']:.4f} ± {single['std_pcc']:.4f}", f"{ens['mean_pcc']:.4f}"]
    if base:
        last.append(f"{base['mean_pcc']:.4f}")
    if test:
        last.append(f"{test['mean_pcc']:.4f}")
    table.add_row(*last, style="bold")
    return table


def baseline_verdict(metrics: dict) -> str | None:
    """One line comparing the model with the ridge baseline (None without a baseline)."""
    base = metrics.get("baseline")
    if not base or metrics["head"] == "ridge":
        return None
    gap = metrics["ensemble"]["mean_pcc"] - base["val"]["mean_pcc"]
    if metrics.get("beats_baseline"):
        return f"[green]beats the ridge baseline by {gap:+.4f} mean PCC[/]"
    return (f"[bold red]does NOT beat the ridge baseline ({gap:+.4f} mean PCC): the model adds nothing "
            f"over pooled statistics here; try more epochs, another head, or check the features[/]")


def print_results(metrics: dict, console: Console | None = None) -> None:
    console = console or Console()
    console.print(results_table(metrics))
    verdict = baseline_verdict(metrics)
    if verdict:
        console.print(verdict)
    data = metrics.get("data", {})
    for kind in ("dropped", "zero_filled"):
        for feat, ids in (data.get(kind) or {}).items():
            console.print(f"[yellow]{len(ids)} clip(s) {kind.replace('_', '-')} for missing {feat}: "
                          f"{', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}[/]")
    undefined = metrics["ensemble"].get("undefined") or []
    if undefined:
        console.print(f"[yellow]constant predictions for {', '.join(undefined)}: r undefined, counted as 0[/]")


def heads_lines() -> list[str]:
    """One line per registered head (for `eri-fit --list-heads`)."""
    from fusion.config import FitConfig
    from fusion.heads import list_recipes
    out = []
    for spec in list_heads():
        recipes = ", ".join(r.name for r in list_recipes(spec.name))
        mark = " (default)" if spec.name == FitConfig.head else ""
        out.append(f"{spec.name:<20} {spec.summary}{mark}" + (f"  [--recipe {recipes}]" if recipes else ""))
    return out


def head_details(name: str) -> list[str]:
    """Options with defaults, training defaults and named recipes of one head (`--show-head`)."""
    from fusion.config import FitConfig
    from fusion.heads import get_head, list_recipes
    spec = get_head(name)
    lines = [f"{spec.name}: {spec.summary}"]
    if spec.paper:
        lines.append(f"structure after: {spec.paper}")
    lines.append("options (--head-opt KEY=VALUE):")
    lines += [f"  {k} = {v}" for k, v in spec.defaults().items()]
    if not spec.closed_form:
        base = FitConfig()
        training = {k: spec.train_defaults.get(k, getattr(base, k))
                    for k in ("optimizer", "lr", "weight_decay", "schedule", "warmup_epochs", "lr_patience",
                              "batch_size", "epochs", "patience", "ema", "grad_clip", "loss", "steps")}
        lines.append("training by default (measured for this head; any flag overrides):")
        lines += [f"  {k} = {v}" for k, v in training.items()]
    for r in list_recipes(spec.name):
        lines.append(f"recipe {r.name} (--recipe {r.name}): {r.source}")
        lines += [f"  {k} = {v}" for k, v in r.settings.items()]
        lines += [f"  head option {k} = {v}" for k, v in r.head_options.items()]
        if r.notes:
            lines.append(f"  note: {r.notes}")
    return lines
