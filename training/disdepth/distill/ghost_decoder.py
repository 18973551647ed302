"""Ghost decoder: the student's decoder and head run on acclimated teacher features.

NOT GhostNet's "ghost module" (Han et al. 2020, cheap feature maps from linear ops). Here "ghost"
means a weight-sharing shadow of the student's decoder: same weights, no gradient into them.

Paper: DisDepth, arXiv 2404.16386, section 3.3 ("teacher acclimation"); docs/design.md section 2.

    depth_t = Decode_{stopgrad(theta_dec)}( A ⊙ FAM(T) )
    L_t     = SILog(depth_t, gt)        -> gradients reach A (LAM) and FAM, never theta_dec

The decoder is called with ``torch.func.functional_call`` and a dict of the student's *current*
parameters, detached, so it always equals the student decoder after every optimiser step and there
is no second copy to keep in sync. Buffers are cloned: BatchNorm in train mode normalises with the
teacher batch's statistics (as the student decoder does with its own), but the running statistics
it updates in place are the clones', so the student's running means never see teacher features.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call


def ghost_decode(student: nn.Module, features: list[torch.Tensor],
                 out_size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Decode ``features`` with the student's current decoder/head weights, no gradient into them.

    Args:
        student: a ``DepthStudent`` (not the DDP wrapper) whose ``forward(features=, out_size=)``
            runs decoder + head + upsampling.
        features: 4 maps shaped like the student's encoder output, [B,C_l,H_l,W_l].
        out_size: (H, W) of the output depth, pixels.
    Returns:
        dict(depth [B,1,H,W] metres[, depth_std]); differentiable w.r.t. ``features`` only.
    """
    params = {name: p.detach() for name, p in student.named_parameters()}
    # the backbone does not run in decode, so only the decoder/head buffers need private copies
    buffers = {name: b.clone() for name, b in student.named_buffers() if not name.startswith('backbone.')}
    return functional_call(student, (params, buffers), (), {'features': features, 'out_size': tuple(out_size)})
