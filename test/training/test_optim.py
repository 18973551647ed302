"""Optimiser parameter groups follow the task's modules (disdepth.optim)."""
from __future__ import annotations

import pytest
import torch

from disdepth.build import build_task
from disdepth.optim import build_optimizer


def _ids(params) -> set[int]:
    return {id(p) for p in params}


@pytest.mark.parametrize('finetune', [0.0, 0.1])
def test_groups_are_the_backbone_the_trainable_teacher_and_the_rest(tiny_cfg, finetune):
    """The backbone group holds exactly the student backbone's parameters at lr * backbone_lr_scale, a fine-tuned
    teacher's encoder gets lr * finetune_lr_scale (a frozen one is in no group), everything else the base lr;
    no decay on biases and norms; every trainable parameter is in exactly one group."""
    tiny_cfg.optim.backbone_lr_scale, tiny_cfg.teacher.finetune_lr_scale = 0.5, finetune
    task, student = build_task(tiny_cfg, torch.device('cpu'))
    groups = build_optimizer(task, tiny_cfg).param_groups
    lr = tiny_cfg.optim.lr
    by_lr: dict[float, set[int]] = {}
    for group in groups:
        by_lr.setdefault(group['lr'], set()).update(_ids(group['params']))
        assert all((p.ndim > 1) == (group['weight_decay'] > 0) for p in group['params'])
    assert by_lr.pop(0.5 * lr) == _ids(student.backbone.parameters())
    if finetune:
        assert by_lr.pop(finetune * lr) == _ids(task.teacher.parameters())
    assert by_lr.pop(lr) == _ids(task.parameters()) - _ids(student.backbone.parameters()) - _ids(
        task.teacher.parameters() if finetune else ())
    assert not by_lr
    listed = [id(p) for group in groups for p in group['params']]
    assert sorted(listed) == sorted(_ids(p for p in task.parameters() if p.requires_grad))


def test_a_zero_scale_leaves_the_backbone_out(tiny_cfg):
    """backbone_lr_scale 0 freezes the backbone by leaving its parameters out of the optimiser."""
    tiny_cfg.optim.backbone_lr_scale = 0.0
    task, student = build_task(tiny_cfg, torch.device('cpu'))
    listed = {id(p) for group in build_optimizer(task, tiny_cfg).param_groups for p in group['params']}
    assert not listed & _ids(student.backbone.parameters()) and listed
