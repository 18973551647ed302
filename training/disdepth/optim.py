"""Optimiser and learning-rate schedule: AdamW over parameter groups chosen by module, one-cycle.

Paper: DisDepth, arXiv 2404.16386, section 4.1 (AdamW, lr 1e-4, one-cycle, 24 epochs); docs/design.md section 2.

    lr groups     = student backbone (LGConv included): lr * optim.backbone_lr_scale;
                    a fine-tuned teacher: lr * teacher.finetune_lr_scale; the rest (decoder, head, FAM, LAM,
                    or the teacher of task=teacher): lr. A scale of 0 leaves the group out.
    weight decay  = optim.weight_decay on weights (ndim > 1), none on biases and norms
    lr(step)        rises from max_lr / div_factor to max_lr over pct_start * total_steps (cosine),
                    then anneals to max_lr / (div_factor * final_div_factor) at total_steps.

The schedule is ``torch.optim.lr_scheduler.OneCycleLR`` rather than our own function: its ``state_dict`` is
tensors and numbers (``weights_only``-loadable), so ``--resume`` restores the position exactly. Each group's
peak is the lr it was created with.
"""
from __future__ import annotations

import torch
from torch import nn

from disdepth.config import Config, OptimConfig

#: parameter groups in the order the optimiser holds them (its state_dict, hence checkpoints, follow it)
GROUP_ORDER = ('backbone', 'rest', 'teacher')


def _group_modules(task: nn.Module) -> dict[str, nn.Module]:
    """The modules of the scaled groups: the student's backbone, and the teacher when the task trains it as a
    registered submodule (a frozen teacher is no submodule and has no trainable parameter)."""
    modules = {}
    student = getattr(task, 'student', None)
    if isinstance(student, nn.Module):
        modules['backbone'] = student.backbone
    children = dict(task.named_children())
    if 'teacher' in children:
        modules['teacher'] = children['teacher']
    return modules


def build_optimizer(task: nn.Module, cfg: Config) -> torch.optim.AdamW:
    """AdamW over ``task``'s trainable parameters, grouped by module (module docstring) and by decay."""
    scales = {'backbone': cfg.optim.backbone_lr_scale, 'teacher': cfg.teacher.finetune_lr_scale, 'rest': 1.0}
    group_of = {id(p): name for name, module in _group_modules(task).items() for p in module.parameters()}
    groups: dict[tuple[str, bool], list] = {}
    for p in task.parameters():
        if p.requires_grad:
            groups.setdefault((group_of.get(id(p), 'rest'), p.ndim > 1), []).append(p)
    param_groups = [{'params': groups[(part, decay)], 'lr': cfg.optim.lr * scales[part],
                     'weight_decay': cfg.optim.weight_decay if decay else 0.0}
                    for part in GROUP_ORDER for decay in (False, True)
                    if (part, decay) in groups and scales[part] > 0]
    return torch.optim.AdamW(param_groups, lr=cfg.optim.lr)


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
