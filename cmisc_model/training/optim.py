"""Optimiser and learning-rate schedule, shared by the autoencoder and the classifier.

Two recipes, chosen in params (``optimizer``, ``schedule``):

- ``sgd`` + ``epoch``: the 2017 recipe — plain SGD, the rate multiplied by
  ``lr_decay`` every ``lr_decay_epochs`` epochs (2017: 0.1, halved each epoch).
- ``adamw`` + ``cosine``: the default. Departure from 2017: on the sample world
  the 2017 recipe leaves the image decoder worse than the mean image and the
  no-AE classifier on one class, so the default is AdamW with a linear
  warm-up and a cosine decay **by optimiser steps**, which trains both.

Either way the schedule is a ``LambdaLR`` stepped once per optimiser step, so
a checkpoint's scheduler state resumes exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, Protocol

import torch


class RecipeConfig(Protocol):
    optimizer: Literal["sgd", "adamw"]
    lr: float
    momentum: float
    weight_decay: float
    schedule: Literal["epoch", "cosine"]
    lr_decay: float
    warmup_steps: int
    min_lr_ratio: float


def build_optimizer(groups: Iterable[dict], cfg: RecipeConfig) -> torch.optim.Optimizer:
    """``groups``: torch parameter groups (each may carry its own ``lr``)."""
    groups = list(groups)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        # fused: one kernel over all parameters, the same update; on CPU torch otherwise loops over
        # tensors one by one (4x slower for the classifier's 6 M parameters on 2 cores)
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    raise ValueError(f"optimizer {cfg.optimizer!r}: expected sgd or adamw")


def lr_factor(step: int, cfg: RecipeConfig, total_steps: int, steps_per_epoch: int,
              decay_epochs: int = 1) -> float:
    """The multiplier of the base rate before optimiser step ``step + 1``."""
    if cfg.schedule == "epoch":
        return cfg.lr_decay ** (step // max(1, steps_per_epoch * decay_epochs))
    if cfg.schedule == "cosine":
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, total_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"schedule {cfg.schedule!r}: expected epoch or cosine")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: RecipeConfig, total_steps: int,
                    steps_per_epoch: int, decay_epochs: int = 1) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step schedule (call ``.step()`` after every optimiser step)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, cfg, total_steps, steps_per_epoch, decay_epochs))
