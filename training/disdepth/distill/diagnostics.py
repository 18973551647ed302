"""Distillation diagnostics: what FAM, LAM and LGConv do during a run, as scalars for the run log.

They say why a component shows no gain where the ablation cannot resolve one, and let users see it on their own
runs.

docs/design.md section 2 (the components) and section 3 (the run log). Computed from tensors the training
step already has (no extra forward pass), on the steps the trainer logs, under ``no_grad``:

    fam_cosine_l      mean_{b,p} cos(F_s,l(b,p), F_t,l(b,p))       acclimated teacher vs student feature,
                      cosine over channels per pixel; 1 = aligned directions, 0 = unrelated
    lam_entropy_l     mean_b  -sum_p a(p) log a(p) / log P_l,  a = A_l / sum_p A_l
                      1 = uniform attention, 0 = all of it on one pixel
    lam_edge_mass_l   share of A_l on the valid pixels whose target log-depth gradient is in the top 20 %
                      (uniform attention: ~0.2)
    lam_far_mass_l    share of A_l on the farthest third of the valid pixels by target depth (uniform: ~1/3)
    lgconv_i_gamma_abs_mean / _max   |gamma| of LGConv block i's branch BatchNorm (starts ~1e-4)
    lgconv_i_gate_mean               mean of the gate s_n(p) = sigmoid(W_s z) over heads and pixels
    lgconv_i_branch_ratio            rms(G(x)) / rms(BN_3x3(conv3x3(x))): the global branch's size
                                     against the local conv it sits beside (0 = the branch adds nothing)

l = 1..4 is the feature scale (strides 4..32), i counts LGConv blocks in ``named_modules`` order (forward
order). The ghost decoder's curves are the loss terms themselves (``silog_teacher``: the student's decoder
on acclimated teacher features; ``silog_student``), logged with every step's terms.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from disdepth.models.lgconv import LGConv

EDGE_FRACTION = 0.2  # top share of pixels by depth gradient counted as edges
FAR_FRACTION = 1 / 3  # farthest share of pixels counted as far


def feature_cosine(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over batch and pixels of the cosine over channels. student, teacher: [B,C,H,W] -> scalar."""
    return F.cosine_similarity(student.float(), teacher.float(), dim=1, eps=1e-8).mean()


def attention_entropy(attention: torch.Tensor) -> torch.Tensor:
    """Entropy of A [B,1,H,W] (non-negative) as a distribution over its P = H*W pixels, divided by log P,
    averaged over the batch -> scalar in 0..1 (1 = uniform; 1 when P = 1, where only uniform exists)."""
    a = attention.float().flatten(1)
    pixels = a.shape[1]
    if pixels == 1:
        return a.new_ones(())
    p = a / a.sum(dim=1, keepdim=True).clamp_min(1e-12)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(dim=1)
    return (entropy / math.log(pixels)).mean()


def top_fraction_mass(attention: torch.Tensor, score: torch.Tensor, valid: torch.Tensor,
                      fraction: float) -> torch.Tensor:
    """Share of attention on the ``fraction`` of valid pixels with the highest ``score``, batch mean.

    Args:
        attention, score: [B,1,H,W]; valid: [B,1,H,W] bool (images without valid pixels are left out).
        fraction: 0..1; ceil(fraction * valid pixels) pixels count per image.
    Returns:
        scalar: sum_{p in top} A(p) / sum_{p valid} A(p); uniform attention gives ~fraction. NaN when no
        image has a valid pixel.
    """
    a, valid = attention.float().flatten(1), valid.flatten(1)
    s = score.float().flatten(1).masked_fill(~valid, -math.inf)
    n_valid = valid.sum(dim=1)
    k = torch.ceil(fraction * n_valid.float())
    rank = s.argsort(dim=1, descending=True).argsort(dim=1)  # 0 = highest score
    top = (rank < k[:, None]) & valid
    share = (a * top).sum(dim=1) / (a * valid).sum(dim=1).clamp_min(1e-12)
    return share[n_valid > 0].mean()


def log_depth_gradient(depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """|d/dx log d| + |d/dy log d| by forward differences between valid neighbours. [B,1,H,W] -> [B,1,H,W]
    (0 where a neighbour is invalid, and in the last row/column)."""
    log_d = torch.where(mask, depth.clamp_min(1e-6).log(), torch.zeros_like(depth))
    grad = torch.zeros_like(log_d)
    dx = (log_d[..., :, 1:] - log_d[..., :, :-1]).abs() * (mask[..., :, 1:] & mask[..., :, :-1])
    dy = (log_d[..., 1:, :] - log_d[..., :-1, :]).abs() * (mask[..., 1:, :] & mask[..., :-1, :])
    grad[..., :, :-1] += dx
    grad[..., :-1, :] += dy
    return grad


def lam_diagnostics(attention: list[torch.Tensor], depth: torch.Tensor, mask: torch.Tensor) -> dict:
    """Entropy, edge and far-depth shares of each scale's A_l [B,1,H_l,W_l] against the target depth
    [B,1,H,W] metres with its valid mask [B,1,H,W] bool, pooled to the scale's grid (a cell is valid when
    over half its pixels are). Returns {'lam_entropy_l', 'lam_edge_mass_l', 'lam_far_mass_l'}: scalars."""
    out = {}
    valid_f = mask.float()
    edges = log_depth_gradient(depth, mask)
    for level, a in enumerate(attention, start=1):
        size = tuple(a.shape[-2:])
        coverage = F.adaptive_avg_pool2d(valid_f, size)
        valid = coverage > 0.5
        far = F.adaptive_avg_pool2d(depth * valid_f, size) / coverage.clamp_min(1e-6)
        out[f'lam_entropy_{level}'] = attention_entropy(a)
        out[f'lam_edge_mass_{level}'] = top_fraction_mass(a, F.adaptive_avg_pool2d(edges, size), valid,
                                                          EDGE_FRACTION)
        out[f'lam_far_mass_{level}'] = top_fraction_mass(a, far, valid, FAR_FRACTION)
    return out


def lgconv_parameters(model: nn.Module) -> dict:
    """|gamma| mean and max of each LGConv block's branch BatchNorm: {'lgconv_i_gamma_abs_mean', ...}."""
    out = {}
    for i, block in enumerate(m for m in model.modules() if isinstance(m, LGConv)):
        gamma = block.bn.weight.detach().abs()
        out[f'lgconv_{i}_gamma_abs_mean'] = gamma.mean()
        out[f'lgconv_{i}_gamma_abs_max'] = gamma.max()
    return out


@contextmanager
def lgconv_activations(model: nn.Module):
    """Record, during the forward passes inside the block, each LGConv's gate mean and branch/local rms
    ratio (forward hooks on its gate conv, branch BN and local conv; removed on exit). Yields the dict
    that fills with {'lgconv_i_gate_mean', 'lgconv_i_branch_ratio'} scalars (the last forward's values)."""
    values: dict[str, torch.Tensor] = {}
    rms: dict[int, dict[str, torch.Tensor]] = {}
    handles = []

    def record(i: int, part: str):
        def hook(_module, _inputs, output):
            output = output.detach().float()
            if part == 'gate':
                values[f'lgconv_{i}_gate_mean'] = torch.sigmoid(output).mean()
                return
            rms.setdefault(i, {})[part] = output.square().mean().sqrt()
            if len(rms[i]) == 2:
                values[f'lgconv_{i}_branch_ratio'] = rms[i]['branch'] / rms[i]['local'].clamp_min(1e-12)
        return hook

    for i, block in enumerate(m for m in model.modules() if isinstance(m, LGConv)):
        handles += [block.gate.register_forward_hook(record(i, 'gate')),
                    block.bn.register_forward_hook(record(i, 'branch')),
                    block.local.register_forward_hook(record(i, 'local'))]
    try:
        yield values
    finally:
        for handle in handles:
            handle.remove()
