"""The resolved configuration of a fit: one flat dataclass, written to config.yaml.

Precedence, lowest first: the defaults below < the head's measured training defaults
(``HeadSpec.train_defaults``) < a named recipe (``--recipe``, e.g. a paper's settings) <
a YAML config (``--config``; keys = these field names, head options under
``head_options``) < command-line flags.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fusion.data import DataPolicy
from fusion.heads import get_head, get_recipe
from fusion.losses import parse_loss


@dataclass
class FitConfig:
    features: list[str] = field(default_factory=list)
    head: str = "conv_pool"
    recipe: str = ""          # a named recipe applied over the head's defaults ("" = none)
    head_options: dict[str, Any] = field(default_factory=dict)
    # data
    steps: int = 32
    steps_per_feature: dict[str, int] = field(default_factory=dict)
    length: str = "resample"                    # resample | pad
    length_per_feature: dict[str, str] = field(default_factory=dict)
    missing: str = "error"                      # error | drop | zeros
    modalities: dict[str, str] = field(default_factory=dict)
    standardize: bool = True
    label_scale: float = 1.0
    split_column: str | None = None
    # training
    loss: str = "mse"
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"   # adam | adamw (decoupled weight decay)
    weight_decay: float = 0.0
    schedule: str = "plateau"  # plateau | cosine (linear warm-up, cosine decay) | constant
    warmup_epochs: float = 0.0  # cosine only
    ema: float = 0.0          # EMA decay of weights (0 = off); evaluated model = EMA
    grad_clip: float = 0.0    # max gradient norm (0 = off)
    lr_patience: int = 5      # epochs without val improvement before the LR is halved
    lr_factor: float = 0.5
    min_lr: float = 1e-6
    patience: int = 15        # early stopping: epochs without val improvement
    seed: int = 0
    seeds: int = 1            # models per split, seeds seed .. seed+seeds-1
    folds: int = 0            # K-fold cross-validation over the labelled clips (0 = off)
    val_fraction: float = 0.2  # held-out share when labels carry no split and folds = 0
    threads: int = 0          # torch threads (0 = automatic: the cores not already busy, fusion.threads)
    eval_batch_size: int = 512

    def data_policy(self) -> DataPolicy:
        return DataPolicy(self.steps, dict(self.steps_per_feature), self.length,
                          dict(self.length_per_feature), self.missing, dict(self.modalities))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "FitConfig":
        if not self.features:
            raise ValueError("no features given (--features a,b)")
        spec = get_head(self.head)
        self.head_options = dataclasses.asdict(spec.make_options(self.head_options))
        parse_loss(self.loss)
        from fusion.train import OPTIMIZERS, SCHEDULES
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name, low in (("epochs", 1), ("batch_size", 2), ("seeds", 1), ("steps", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.folds == 1 or self.folds < 0:
            raise ValueError(f"folds must be 0 (off) or >= 2, got {self.folds}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        return self


FIELDS = {f.name for f in dataclasses.fields(FitConfig)}


def read_yaml_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read config ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: config must be a mapping of option: value")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {unknown}; known: {sorted(FIELDS)}")
    return raw


def resolve_config(yaml_path: str | Path | None = None,
                   overrides: dict[str, Any] | None = None) -> FitConfig:
    """Merge defaults, the head's recipe, a YAML file and flags (None = not given)."""
    from_yaml = read_yaml_config(yaml_path) if yaml_path else {}
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(flags) - FIELDS)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}")
    recipe_name = flags.get("recipe") or from_yaml.get("recipe") or ""
    recipe = get_recipe(recipe_name) if recipe_name else None
    head = flags.get("head") or from_yaml.get("head") or (recipe.head if recipe else FitConfig.head)
    if recipe is not None and head != recipe.head:
        raise ValueError(f"recipe {recipe.name!r} is for head {recipe.head!r}, not {head!r}")
    settings = recipe.settings if recipe else {}
    merged: dict[str, Any] = {**get_head(head).train_defaults, **settings, **from_yaml, **flags,
                              "head": head, "recipe": recipe_name}
    merged["head_options"] = {**(recipe.head_options if recipe else {}),
                              **from_yaml.get("head_options", {}), **flags.get("head_options", {})}
    for key in ("steps_per_feature", "length_per_feature", "modalities"):
        merged[key] = {**from_yaml.get(key, {}), **flags.get(key, {})}
    if isinstance(merged.get("features"), str):
        merged["features"] = [f.strip() for f in merged["features"].split(",") if f.strip()]
    return FitConfig(**merged).validate()


def write_config(cfg: FitConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
