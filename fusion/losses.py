"""Training losses and the ``--loss`` expression parser.

Terms (each a function of predictions in [0,1], the head's class logits — its logits unless
it has a separate classification layer — and targets):
  mse    mean squared error
  pcc    1 - mean over emotions of Pearson r along the batch
  ccc    1 - mean over emotions of Lin's concordance correlation coefficient
  class  cross-entropy between softmax(logits) and the emotions whose label equals the
         clip's maximum (Hume normalises each clip so its strongest emotion is 1);
         clips whose labels are all 0 are left out
An expression is a sum of optionally weighted terms: ``mse``, ``mse+0.01*class``,
``0.5*pcc + 0.5*ccc``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Term = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
_EPS = 1e-8


def mse_loss(pred: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target)


def batch_pcc(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pearson r per column along the batch dimension: (B, K) -> (K,)."""
    pm = pred - pred.mean(dim=0, keepdim=True)
    tm = target - target.mean(dim=0, keepdim=True)
    num = (pm * tm).sum(dim=0)
    den = torch.sqrt((pm * pm).sum(dim=0) * (tm * tm).sum(dim=0) + _EPS)
    return num / den


def pcc_loss(pred: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 1.0 - batch_pcc(pred, target).mean()


def ccc_loss(pred: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    pmean, tmean = pred.mean(dim=0), target.mean(dim=0)
    pvar = pred.var(dim=0, unbiased=False)
    tvar = target.var(dim=0, unbiased=False)
    cov = ((pred - pmean) * (target - tmean)).mean(dim=0)
    ccc = 2 * cov / (pvar + tvar + (pmean - tmean) ** 2 + _EPS)
    return 1.0 - ccc.mean()


def class_loss(pred: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    top = target.max(dim=1, keepdim=True).values
    keep = top.squeeze(1) > 0
    if not bool(keep.any()):
        return logits.sum() * 0.0
    onehot = (target >= top - 1e-6).float()[keep]
    dist = onehot / onehot.sum(dim=1, keepdim=True)
    return -(dist * F.log_softmax(logits[keep], dim=1)).sum(dim=1).mean()


TERMS: dict[str, Term] = {"mse": mse_loss, "pcc": pcc_loss, "ccc": ccc_loss, "class": class_loss}
_TERM_RE = re.compile(r"^(?:(?P<w>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?(?P<name>[a-z]+)$")


@dataclass(frozen=True)
class LossExpr:
    terms: tuple[tuple[float, str], ...]

    def __call__(self, pred: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = pred.new_zeros(())
        for weight, name in self.terms:
            total = total + weight * TERMS[name](pred, logits, target)
        return total

    def __str__(self) -> str:
        return "+".join(n if w == 1 else f"{w:g}*{n}" for w, n in self.terms)


def parse_loss(expr: str) -> LossExpr:
    """``"mse+0.01*class"`` -> LossExpr(((1.0, "mse"), (0.01, "class")))."""
    parts = [p.strip() for p in expr.strip().lower().split("+")]
    terms = []
    for part in parts:
        m = _TERM_RE.match(part)
        if not m or m["name"] not in TERMS:
            raise ValueError(f"bad loss term {part!r} in {expr!r}; terms: {', '.join(TERMS)}, "
                             "written like mse+0.01*class")
        terms.append((float(m["w"]) if m["w"] else 1.0, m["name"]))
    return LossExpr(tuple(terms))
