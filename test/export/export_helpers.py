"""Export test helpers: tiny students written as real checkpoints (disdepth.checkpoint's save API)."""
from __future__ import annotations

import torch
from torch import nn

from disdepth.checkpoint import save_checkpoint
from disdepth.config import config_from_dict, config_to_dict
from disdepth.models.student import build_student

HEIGHT, WIDTH = 64, 96


def make_config(backbone='mobilenet_v2', head='bins', lgconv=True, dataset='synthetic_outdoor', **data):
    """Small config: 64x96 evaluation/export size, 4 synthetic test images."""
    data = dict(dict(dataset=dataset, height=HEIGHT, width=WIDTH, eval_height=HEIGHT, eval_width=WIDTH,
                     num_test=4, num_train=4), **data)
    return config_from_dict({'task': 'student', 'data': data,
                             'model': {'backbone': backbone, 'head': head, 'lgconv': {'enabled': lgconv}}})


def trained_like_student(cfg) -> nn.Module:
    """A fresh student whose BatchNorms have non-trivial statistics and scales, so every branch (LGConv's
    near-zero-initialised one included) changes the output and parity checks exercise it."""
    model = build_student(cfg.model)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                for tensor, low, high in ((module.weight, 0.5, 1.5), (module.bias, -0.1, 0.1),
                                          (module.running_mean, -0.1, 0.1), (module.running_var, 0.5, 1.5)):
                    tensor.copy_(torch.empty_like(tensor).uniform_(low, high, generator=generator))
    return model.eval()


def write_checkpoint(folder, cfg, model) -> str:
    """best.pt + best.json as the trainer writes them (disdepth.checkpoint.save_checkpoint)."""
    meta = {'config': config_to_dict(cfg), 'task': 'student', 'step': 1, 'epoch': 0, 'metrics': {}}
    return str(save_checkpoint(folder, 'best', {'model': model.state_dict(), 'step': 1}, meta))
