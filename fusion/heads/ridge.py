"""`ridge`: the closed-form baseline every run is compared with — ridge regression on pooled
statistics (mean, std, max, min over time of every feature dimension of every stream; a
token-set stream is first averaged over its tokens, so a (T, 49, 256) map gives 4 x 256),
columns standardised with training statistics, alpha chosen by validation mean PCC.

It is a head like the others (a checkpoint, `eri-predict`, ensembles), but fitted by
`fit_closed_form` instead of gradient steps: `eri-fit --head ridge` runs it alone; every
other run fits it too and reports it as `baseline`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from fusion.heads.blocks import pooled_stats
from fusion.heads.registry import N_OUT, FusionHead, HeadSpec, StreamInfo, register_head
from fusion.metrics import score

_EPS = 1e-4  # predictions are clamped to [eps, 1 - eps] before the logit


@dataclass(frozen=True)
class RidgeOptions:
    alphas: str = "0.01,0.1,1,10,100,1000,1e4,1e5"   # candidates, chosen on the validation split


def parse_alphas(text: str) -> list[float]:
    try:
        alphas = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise ValueError(f"ridge: alphas must be comma-separated numbers, got {text!r}") from None
    if not alphas or any(a <= 0 for a in alphas):
        raise ValueError(f"ridge: alphas must be positive, got {text!r}")
    return alphas


class RidgeHead(FusionHead):
    token_frontend = "mean"   # token sets: mean over tokens per step, then the pooled statistics over time

    def __init__(self, streams: dict[str, StreamInfo], cfg: RidgeOptions) -> None:
        super().__init__(streams, cfg)
        self.alphas = parse_alphas(cfg.alphas)
        n = 4 * sum(self.dims.values())
        self.register_buffer("col_mean", torch.zeros(n))
        self.register_buffer("col_std", torch.ones(n))
        self.register_buffer("weight", torch.zeros(n, N_OUT))
        self.register_buffer("bias", torch.full((N_OUT,), 0.5))
        self.register_buffer("alpha", torch.zeros(()))

    def pool(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.inputs(x)
        return torch.cat([pooled_stats(x[n] * masks[n].unsqueeze(-1), masks[n]) for n in self.names], dim=-1)

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.logit(self.predict_pooled(self.pool(x, masks)).clamp(_EPS, 1 - _EPS))

    def predict_pooled(self, feats: torch.Tensor) -> torch.Tensor:
        return ((feats - self.col_mean) / self.col_std) @ self.weight + self.bias

    @torch.no_grad()
    def fit_closed_form(self, train: torch.Tensor, y_train: torch.Tensor, val: torch.Tensor,
                        y_val: torch.Tensor) -> dict:
        """Fit on pooled features `train` (N, F) and pick alpha by mean PCC on `val`.
        Returns {"alpha", "val_pred" (numpy), "scores": {alpha: val mean PCC}}."""
        x = train.double()
        mean, std = x.mean(0), x.std(0, unbiased=False)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        a = (x - mean) / std
        yc = y_train.double() - y_train.double().mean(0)
        b = ((val.double() - mean) / std)
        solve = _ridge_solver(a, yc)
        scores, best = {}, None
        for alpha in self.alphas:
            w = solve(alpha)
            pred = (b @ w + y_train.double().mean(0)).float()
            s = score(pred.numpy(), y_val.numpy()).mean
            scores[alpha] = s
            if best is None or s > best[0] + 1e-12:
                best = (s, alpha, w, pred)
        _, alpha, w, pred = best
        self.col_mean.copy_(mean.float())
        self.col_std.copy_(std.float())
        self.weight.copy_(w.float())
        self.bias.copy_(y_train.float().mean(0))
        self.alpha.fill_(alpha)
        return {"alpha": alpha, "val_pred": pred.clamp(0, 1).numpy(), "scores": scores}


def _ridge_solver(a: torch.Tensor, y: torch.Tensor):
    """alpha -> W minimising |aW - y|^2 + alpha |W|^2, through one eigendecomposition of the
    smaller Gram matrix (features x features, or clips x clips when there are fewer clips)."""
    n, f = a.shape
    if f <= n:
        evals, vecs = torch.linalg.eigh(a.T @ a)
        proj = vecs.T @ (a.T @ y)
        return lambda alpha: vecs @ (proj / (evals.clamp_min(0) + alpha)[:, None])
    evals, vecs = torch.linalg.eigh(a @ a.T)
    proj = vecs.T @ y
    return lambda alpha: a.T @ (vecs @ (proj / (evals.clamp_min(0) + alpha)[:, None]))


SPEC = register_head(HeadSpec(
    "ridge", RidgeHead, RidgeOptions,
    "closed-form ridge on pooled mean/std/max/min per feature dim; alpha by val PCC "
    "(the baseline of every run)",
    closed_form=True))
