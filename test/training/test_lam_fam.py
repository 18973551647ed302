"""LAM attention (distribution over pixels, learns where the teacher loss is large) and FAM shapes."""
from __future__ import annotations

import torch

from disdepth.distill.fam import FeatureAcclimation
from disdepth.distill.lam import LossAttention, UniformAttention
from disdepth.losses import silog


def test_lam_attention_has_mean_one_and_starts_uniform():
    """A is P * softmax over pixels (mean 1); the zero-initialised query makes it uniform at start."""
    lam = LossAttention(8, dim=4)
    x = torch.randn(3, 8, 5, 7)
    assert torch.allclose(lam(x), torch.ones(3, 1, 5, 7))
    torch.nn.init.normal_(lam.query.weight)
    a = lam(x)
    assert a.shape == (3, 1, 5, 7) and bool((a >= 0).all())
    assert torch.allclose(a.mean(dim=(1, 2, 3)), torch.ones(3), atol=1e-5)
    assert not torch.allclose(a, torch.ones_like(a))
    assert torch.equal(UniformAttention()(x), torch.ones(3, 1, 5, 7))


def test_lam_concentrates_where_the_teacher_loss_is_large():
    """Constructed case: the 'decoder' predicts depth = A * 1, gt is 3x deeper in a marked region;
    training LAM on SILog must raise A inside that region, where the loss was large."""
    torch.manual_seed(0)
    h, w = 8, 16
    region = torch.zeros(1, 1, h, w, dtype=torch.bool)
    region[..., 2:5, 3:8] = True
    feat = torch.cat([torch.ones(1, 1, h, w), region.float()], dim=1).repeat(2, 1, 1, 1)  # channel 1 marks it
    gt = torch.where(region, 3.0, 1.0).repeat(2, 1, 1, 1)
    mask = torch.ones_like(gt, dtype=torch.bool)
    lam = LossAttention(2, dim=4)
    torch.nn.init.normal_(lam.key.weight)  # zero query + zero-mean keys would leave nothing to learn from
    opt = torch.optim.Adam(lam.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss = silog(lam(feat) * feat[:, :1], gt, mask)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    a = lam(feat).detach()
    assert loss.item() < 0.5 * first
    assert a[region.expand_as(a)].mean() > 1.5 * a[~region.expand_as(a)].mean()


def test_fam_maps_teacher_channels_and_strides_to_the_student():
    """FAM output has the student's channels and spatial size per scale, whatever the teacher stride."""
    fam = FeatureAcclimation([8, 16, 32, 64], [4, 6, 10, 12])
    t = [torch.randn(2, c, 8 // 2 ** i + 1, 20 // 2 ** i) for i, c in enumerate([8, 16, 32, 64])]
    sizes = [(8, 16), (4, 8), (2, 4), (1, 2)]
    out = fam(t, sizes)
    assert [tuple(o.shape) for o in out] == [(2, c, *s) for c, s in zip([4, 6, 10, 12], sizes, strict=True)]
