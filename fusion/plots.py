"""PNG plots of a run (matplotlib, Agg backend): learning curves, per-emotion PCC bars,
predicted-vs-true scatter per emotion."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fusion.labels import EMOTION_COLUMNS, EMOTIONS  # noqa: E402


def learning_curves(histories: dict[str, list[dict]], path: Path) -> None:
    fig, (ax_loss, ax_pcc) = plt.subplots(1, 2, figsize=(11, 4))
    for name, hist in histories.items():
        ep = [h["epoch"] for h in hist]
        line, = ax_loss.plot(ep, [h["train_loss"] for h in hist], label=f"{name} train")
        ax_loss.plot(ep, [h["val_loss"] for h in hist], "--", color=line.get_color(), label=f"{name} val")
        ax_pcc.plot(ep, [h["val_mean_pcc"] for h in hist], color=line.get_color(), label=name)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_pcc.set(xlabel="epoch", ylabel="mean Pearson r", title="validation mean PCC")
    for ax in (ax_loss, ax_pcc):
        ax.grid(alpha=0.3)
    if len(histories) <= 10:
        ax_loss.legend(fontsize=7)
        ax_pcc.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def pcc_bars(metrics: dict, path: Path) -> None:
    x = np.arange(len(EMOTIONS))
    single = metrics["single"]
    ens = [metrics["ensemble"]["pcc"][e] for e in EMOTIONS]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(x - 0.2, [single["pcc_mean"][e] for e in EMOTIONS], 0.4,
           yerr=[single["pcc_std"][e] for e in EMOTIONS], capsize=3,
           label=f"single model (n={single['n_models']}), mean ± std")
    ax.bar(x + 0.2, ens, 0.4, label="ensemble")
    ax.axhline(metrics["ensemble"]["mean_pcc"], color="k", lw=0.8, ls="--",
               label=f"ensemble mean {metrics['ensemble']['mean_pcc']:.3f}")
    ax.set_xticks(x, EMOTION_COLUMNS, rotation=30)
    ax.set(ylabel="Pearson r", title="validation PCC per emotion")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def scatter(pred: np.ndarray, true: np.ndarray, path: Path, title: str = "validation") -> None:
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.5))
    for k, ax in enumerate(axes.flat):
        if k >= len(EMOTIONS):
            ax.axis("off")
            continue
        ax.scatter(true[:, k], pred[:, k], s=6, alpha=0.5)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1), title=EMOTION_COLUMNS[k], xlabel="true", ylabel="predicted")
    fig.suptitle(f"predicted vs true ({title})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(run_dir: Path, histories: dict[str, list[dict]], metrics: dict,
                pred: np.ndarray, true: np.ndarray) -> list[Path]:
    out = run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "learning_curves.png", out / "pcc_per_emotion.png", out / "scatter_val.png"]
    learning_curves(histories, paths[0])
    pcc_bars(metrics, paths[1])
    scatter(pred, true, paths[2])
    return paths
