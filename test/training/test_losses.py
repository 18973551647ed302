"""SILog and attentive KD against plain numpy formulas (reference-implementation tests)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from disdepth.losses import attentive_kd, silog


def _silog_numpy(pred, gt, mask, lam=0.85, scale=10.0):
    g = np.log(pred[mask]) - np.log(gt[mask])
    return scale * np.sqrt(np.mean(g ** 2) - lam * np.mean(g) ** 2)


def test_silog_matches_numpy_formula():
    """SILog = 10 * sqrt(mean(g^2) - 0.85 mean(g)^2) on valid pixels only, as BTS/AdaBins define it."""
    rng = np.random.default_rng(0)
    pred = rng.uniform(0.5, 80, (2, 1, 8, 16)).astype(np.float32)
    gt = rng.uniform(0.5, 80, (2, 1, 8, 16)).astype(np.float32)
    mask = rng.random((2, 1, 8, 16)) > 0.3
    got = silog(torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(mask)).item()
    assert got == pytest.approx(_silog_numpy(pred, gt, mask), rel=1e-5)


def test_silog_is_small_for_scaled_prediction_and_zero_without_valid_pixels():
    """A global scale error costs only sqrt(0.15)*|log s|*10; an empty mask gives 0 with a gradient."""
    gt = torch.rand(1, 1, 4, 4) * 10 + 1
    mask = torch.ones_like(gt, dtype=torch.bool)
    assert silog(gt * 2, gt, mask).item() == pytest.approx(10 * np.sqrt(0.15) * np.log(2), rel=1e-3)
    pred = gt.clone().requires_grad_(True)
    loss = silog(pred, gt, torch.zeros_like(mask))
    loss.backward()
    assert loss.item() == 0.0 and pred.grad is not None


def test_silog_is_exactly_zero_at_the_target_with_finite_gradients():
    """pred == gt gives loss 0 and a finite (zero) gradient; a prediction 0.01 % off still gets a gradient
    that points back to the target.

    An epsilon of 1e-6 under the square root gave 0.0100 at pred == gt and no gradient at all within ~0.1 %.
    """
    gt = torch.linspace(1.0, 60.0, 32).reshape(1, 1, 4, 8)
    mask = torch.ones_like(gt, dtype=torch.bool)
    pred = gt.clone().requires_grad_(True)
    loss = silog(pred, gt, mask)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(pred.grad).all() and not pred.grad.any()
    for focus in (0.85, 1.0):  # 1.0: a pure scale error has var 0 (rounding may make it slightly negative)
        scaled = (gt * 1.5).requires_grad_(True)
        silog(scaled, gt, mask, variance_focus=focus).backward()
        assert torch.isfinite(scaled.grad).all()
    near = gt.clone()
    near[0, 0, 0, :4] *= 1.0001  # 0.01 % too far on four pixels
    near.requires_grad_(True)
    loss = silog(near, gt, mask)
    loss.backward()
    assert 0 < loss.item() < 1e-2 and torch.isfinite(near.grad).all()
    assert (near.grad[0, 0, 0, :4] > 0).all(), 'a gradient step must shrink the too-far predictions'
    expected = _silog_numpy(near.detach().double().numpy(), gt.double().numpy(), mask.numpy())
    assert loss.item() == pytest.approx(expected, rel=1e-2)


def test_silog_rejects_mismatched_shapes():
    """Shape errors are caught with a message, not broadcast silently."""
    with pytest.raises(ValueError, match='same shape'):
        silog(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 5), torch.ones(1, 1, 4, 4, dtype=torch.bool))


def test_attentive_kd_matches_numpy_formula():
    """L_kd = sum_l mean_p A_l(p) * mean_c (F_s - F_t)^2."""
    rng = np.random.default_rng(1)
    fs = [rng.normal(size=(2, c, h, w)).astype(np.float32) for c, h, w in ((4, 8, 8), (6, 4, 4))]
    ft = [rng.normal(size=f.shape).astype(np.float32) for f in fs]
    att = [rng.uniform(0, 2, (2, 1, *f.shape[-2:])).astype(np.float32) for f in fs]
    want = sum(np.mean(a[:, 0] * np.mean((s - t) ** 2, axis=1)) for s, t, a in zip(fs, ft, att, strict=True))
    got = attentive_kd(*[[torch.from_numpy(x) for x in xs] for xs in (fs, ft, att)]).item()
    assert got == pytest.approx(want, rel=1e-5)
