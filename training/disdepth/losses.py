"""Depth losses: scale-invariant log loss (SILog) and the attentive feature-distillation loss.

Paper: "Promoting CNNs with Cross-Architecture Knowledge Distillation for Efficient Monocular Depth
Estimation" (DisDepth), arXiv 2404.16386, sections 3.3 (attentive KD) and 3.4 (objective).
SILog: Eigen et al. 2014, with the variance focus of BTS / AdaBins.

    g(p)    = log(pred(p)) - log(gt(p))                       over valid pixels p
    SILog   = scale * sqrt( mean(g^2) - variance_focus * mean(g)^2 )
    L_kd    = sum_l mean_p A_l(p) * ||F_s,l(p) - F_t,l(p)||^2  (A_l and F_t,l detached by the caller)

The square root is taken as sqrt(max(var, 0)) with derivative 0 where var <= 0: var reaches 0 only at the
minimum (g = 0 everywhere for variance_focus < 1), where the loss is exactly 0 and 0 is a valid subgradient;
for any var > 0 the true gradient flows, so predictions within 0.1 % of the target still learn (an epsilon
under the root floored the loss at scale * sqrt(eps) and zeroed those gradients).

We take ||.||^2 as the mean over channels rather than the sum, so that scales with different
channel counts weigh alike; this is the sum divided by C_l, i.e. a per-layer constant in lambda.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_MIN_DEPTH = 1e-6  # metres: keeps log(pred) finite for a non-positive prediction


def _sqrt_zero_grad_at_zero(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)) whose gradient is 0, not inf or NaN, where x <= 0.

    The inner ``where`` feeds sqrt a harmless 1 there, so no inf appears even in the unused branch (an inf
    there times the outer ``where``'s zero gradient would still give NaN).
    """
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def silog(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor,
          variance_focus: float = 0.85, scale: float = 10.0) -> torch.Tensor:
    """Scale-invariant log loss over valid pixels, averaged over the batch as one pixel set.

    Args:
        pred: [B,1,H,W] predicted depth, metres (> 0; clamped at 1e-6 m to keep log finite).
        gt: [B,1,H,W] ground-truth depth, metres (only read where ``mask``).
        mask: [B,1,H,W] bool, valid pixels.
    Returns:
        Scalar tensor: exactly 0 where pred == gt on every valid pixel (finite, zero gradient there), and
        zero (with gradient) when no pixel is valid.
    Raises:
        ValueError: shapes of ``pred``, ``gt`` and ``mask`` differ.
    """
    if pred.shape != gt.shape or pred.shape != mask.shape:
        raise ValueError(f'silog: pred {tuple(pred.shape)}, gt {tuple(gt.shape)} and mask '
                         f'{tuple(mask.shape)} must have the same shape')
    # Compute in float32 even under autocast: log of bf16 depth loses the small differences SILog measures.
    pred, gt = pred.float(), gt.float()
    if not bool(mask.any()):
        return pred.sum() * 0.0
    g = torch.log(pred[mask].clamp_min(_MIN_DEPTH)) - torch.log(gt[mask].clamp_min(_MIN_DEPTH))
    var = (g ** 2).mean() - variance_focus * g.mean() ** 2
    # rounding can make var slightly negative when all g are equal (variance_focus 1): that is a 0 loss
    return scale * _sqrt_zero_grad_at_zero(var)


def attentive_kd(student_feats: list[torch.Tensor], teacher_feats: list[torch.Tensor],
                 attention: list[torch.Tensor]) -> torch.Tensor:
    """Attention-weighted feature distillation, summed over scales.

    Args:
        student_feats: per scale l, [B,C_l,H_l,W_l] student encoder features (gradient flows here).
        teacher_feats: per scale l, [B,C_l,H_l,W_l] acclimated teacher features (pass them detached
            for DisDepth's KD; plain feature KD passes them with gradient so FAM learns from KD).
        attention: per scale l, [B,1,H_l,W_l] pixel weights with mean 1 (pass detached).
    Returns:
        Scalar tensor.
    Raises:
        ValueError: list lengths or shapes do not match.
    """
    if not (len(student_feats) == len(teacher_feats) == len(attention)):
        raise ValueError('attentive_kd: student, teacher and attention lists differ in length')
    total = student_feats[0].new_zeros((), dtype=torch.float32)
    for fs, ft, a in zip(student_feats, teacher_feats, attention, strict=True):
        if fs.shape != ft.shape or a.shape[-2:] != fs.shape[-2:]:
            raise ValueError(f'attentive_kd: student {tuple(fs.shape)}, teacher {tuple(ft.shape)}, '
                             f'attention {tuple(a.shape)} do not match')
        dist = F.mse_loss(fs.float(), ft.float(), reduction='none').mean(dim=1, keepdim=True)  # (B,1,H,W)
        total = total + (a.float() * dist).mean()
    return total
