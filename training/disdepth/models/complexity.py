"""Model cost: parameter count and FLOPs (torch.utils.flop_counter), as reported in paper tables.

Paper: DisDepth, arXiv 2404.16386, section 4 (efficiency comparison: params, FLOPs, latency).
FLOPs follow ``FlopCounterMode``: a multiply-add counts as 2 FLOPs (conv, matmul, einsum via bmm);
element-wise ops, softmax and interpolation are not counted.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_flops(model: nn.Module, height: int, width: int) -> int:
    """FLOPs of one forward pass on a [1,3,height,width] input (pixels), in eval mode.

    The model is called as ``model(x)``; its training mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    x = torch.zeros(1, 3, height, width, device=param.device if param is not None else 'cpu')
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
