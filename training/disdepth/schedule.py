"""Learning-rate schedule: one-cycle (Smith & Topin 2017), the DisDepth default with AdamW.

Paper: DisDepth, arXiv 2404.16386, section 4.1 (AdamW, lr 1e-4, one-cycle); docs/design.md section 2.

    lr(step) rises from max_lr / div_factor to max_lr over pct_start * total_steps (cosine),
    then anneals to max_lr / (div_factor * final_div_factor) at total_steps.

We use ``torch.optim.lr_scheduler.OneCycleLR`` rather than our own function: its ``state_dict`` is
tensors and numbers (``weights_only``-loadable), so ``--resume`` restores the position exactly.
Each parameter group's peak is the lr it was created with (backbone and teacher groups are scaled).
"""
from __future__ import annotations

import torch

from disdepth.config import OptimConfig


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig,
                    total_steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
    """One-cycle over ``total_steps`` optimiser steps (call ``.step()`` once per step).

    Raises:
        ValueError: ``total_steps`` < 1.
    """
    if total_steps < 1:
        raise ValueError(f'one-cycle schedule needs total_steps >= 1, got {total_steps}')
    peaks = [group['lr'] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peaks, total_steps=total_steps, pct_start=cfg.pct_start,
        div_factor=cfg.div_factor, final_div_factor=cfg.final_div_factor)
