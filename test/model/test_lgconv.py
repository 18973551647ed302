"""LGConv (docs/design.md section 2): zero impact at init, gradients, globality, formula, linear cost."""
import copy

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from disdepth.config import LGConvConfig
from disdepth.models.backbones import BACKBONES, build_backbone
from disdepth.models.complexity import count_flops
from disdepth.models.lgconv import LGConv, add_lgconv

BRANCH = ('reduce', 'attn', 'gate', 'value', 'proj', 'bn')


def lgconv_on_plain_conv(channels=8, stride=1, heads=2, reduction=2, proj_groups=1):
    local = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
    return LGConv(local, channels, channels, stride, heads=heads, reduction=reduction, proj_groups=proj_groups)


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_zero_impact_at_init(name):
    """BN gamma ~ N(0, 1e-4): a pretrained backbone keeps its features (<1 %) when LGConv is added."""
    backbone = build_backbone(name).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        before = backbone(x)
        assert add_lgconv(backbone, LGConvConfig(stages=[1, 2, 3, 4])) > 0
        after = backbone.eval()(x)
    for a, b in zip(after, before, strict=True):
        assert (a - b).norm() / b.norm() < 0.01


def test_stem_and_indivisible_convs_are_skipped():
    """Convs whose input channels do not divide by heads stay plain; counts follow the stages."""
    assert add_lgconv(build_backbone('resnet18'), LGConvConfig(stages=[1, 2, 3, 4])) == 16
    assert add_lgconv(build_backbone('resnet18'), LGConvConfig(stages=[4])) == 4
    assert add_lgconv(build_backbone('resnet18'), LGConvConfig(heads=7)) == 0  # 64..512 channels
    assert add_lgconv(build_backbone('resnet18'), LGConvConfig(enabled=False)) == 0
    with pytest.raises(ValueError, match='1..4'):
        add_lgconv(build_backbone('resnet18'), LGConvConfig(stages=[5]))
    with pytest.raises(ValueError, match='divisible'):
        LGConv(nn.Identity(), 3, 8, heads=8)


def test_branch_gets_gradient_and_learns():
    """After one optimiser step every global-branch parameter has received gradient and the output moved."""
    backbone = build_backbone('resnet18')
    add_lgconv(backbone, LGConvConfig(stages=[3, 4]))
    wrapped = [m for m in backbone.modules() if isinstance(m, LGConv)]
    optimiser = torch.optim.AdamW(backbone.parameters(), lr=1e-3)
    x = torch.randn(2, 3, 64, 64)
    for _ in range(2):
        optimiser.zero_grad()
        loss = sum(f.square().mean() for f in backbone(x))
        loss.backward()
        for module in wrapped:
            for part in BRANCH:
                for p in getattr(module, part).parameters():
                    assert p.grad is not None and p.grad.abs().sum() > 0 and torch.isfinite(p.grad).all()
        optimiser.step()
    assert all(m.bn.weight.abs().max() > 1e-3 for m in wrapped)  # gamma left its ~1e-4 init


def test_branch_is_global():
    """A far-away pixel change reaches a pixel through the branch, but not through the 3x3 conv alone."""
    module = lgconv_on_plain_conv().eval()
    nn.init.ones_(module.bn.weight)  # make the branch matter, as after training
    x = torch.randn(1, 8, 16, 16)
    x_far = x.clone()
    x_far[..., 10:, 10:] += torch.randn(1, 8, 6, 6)  # >= 10 px away from pixel (0, 0)
    with torch.no_grad():
        local_change = (module.local(x_far) - module.local(x))[..., 0, 0].abs().max()
        total_change = (module(x_far) - module(x))[..., 0, 0].abs().max()
    assert local_change == 0
    assert total_change > 1e-3


def naive_branch(m: LGConv, x: torch.Tensor) -> torch.Tensor:
    """The docs/design.md section 2 formula with explicit loops over pixels and heads (reference implementation)."""
    _, c, height, width = x.shape
    pixels = [(i, j) for i in range(height) for j in range(width)]
    w = {k: getattr(m, k).weight[:, :, 0, 0] for k in ('reduce', 'attn', 'gate', 'value', 'proj')}
    groups = m.proj.groups  # a grouped W_o is the block-diagonal dense matrix
    w['proj'] = torch.block_diag(*w['proj'].reshape(groups, -1, c // groups))
    h = {p: torch.relu(w['reduce'] @ x[0, :, p[0], p[1]] + m.reduce.bias) for p in pixels}
    mean_h = sum(h.values()) / len(pixels)
    z = {p: torch.cat([h[p], mean_h]) for p in pixels}
    logits = torch.stack([w['attn'] @ z[p] + m.attn.bias for p in pixels])  # (HW, heads)
    attn = torch.exp(logits) / torch.exp(logits).sum(0)
    values = torch.stack([w['value'] @ x[0, :, p[0], p[1]] + m.value.bias for p in pixels])  # (HW, C)
    d = c // m.heads
    pooled = [sum(attn[k, n] * values[k, n * d:(n + 1) * d] for k in range(len(pixels))) for n in range(m.heads)]
    stride = m.proj.stride[0]
    bn = m.bn
    out = torch.zeros(1, m.proj.out_channels, (height - 1) // stride + 1, (width - 1) // stride + 1, dtype=x.dtype)
    for i, j in pixels:
        if i % stride or j % stride:
            continue
        gate = torch.sigmoid(w['gate'] @ z[(i, j)] + m.gate.bias)
        y = x[0, :, i, j] + torch.cat([gate[n] * pooled[n] for n in range(m.heads)])
        y = w['proj'] @ y
        out[0, :, i // stride, j // stride] = (y - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) \
            * bn.weight + bn.bias
    return out


@pytest.mark.parametrize('stride, proj_groups', [(1, 1), (2, 1), (1, 2), (2, 8)])
def test_matches_naive_loop(stride, proj_groups):
    """The vectorised branch equals the per-pixel formula of docs/design.md section 2 (dense, grouped or channelwise
    W_o)."""
    module = lgconv_on_plain_conv(stride=stride, proj_groups=proj_groups).double().eval()
    nn.init.normal_(module.bn.weight)
    nn.init.normal_(module.bn.running_mean)
    x = torch.randn(1, 8, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(module.global_branch(x), naive_branch(module, x), atol=1e-10)


class ShapeRecorder(TorchDispatchMode):
    """Record the element count of every tensor an aten op returns."""

    def __init__(self):
        super().__init__()
        self.numels = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.numels.append(t.numel())
        return out


def test_no_pixel_by_pixel_tensor_and_linear_flops():
    """Cost is linear in H*W: no op makes an H*W x H*W tensor, and 4x the pixels is 4x the FLOPs."""
    module = lgconv_on_plain_conv(channels=16, heads=8, reduction=4).eval()
    hw = 32 * 32
    with torch.no_grad(), ShapeRecorder() as recorder:
        module(torch.randn(1, 16, 32, 32))
    assert max(recorder.numels) < hw * hw / 16
    model = nn.Sequential(nn.Conv2d(3, 16, 1), copy.deepcopy(module))
    # 4x within 1 % (per-image terms such as projecting the pooled vectors do not scale); H*W x H*W would be 16x.
    assert count_flops(model, 64, 64) == pytest.approx(4 * count_flops(model, 32, 32), rel=0.01)


@pytest.mark.parametrize('depthwise_proj, mobilenet_groups', [('grouped', {8}), ('channelwise', {576, 960}),
                                                             ('dense', {1})])
def test_projection_follows_the_key_only_beside_depthwise_convs(depthwise_proj, mobilenet_groups):
    """MobileNetV2's depthwise 3x3s get W_o grouped by heads, channelwise (one weight per channel) or dense, as
    ``lgconv.depthwise_proj`` says; ResNet's dense 3x3s keep a dense W_o whatever it says."""
    for name, expected in (('mobilenet_v2', mobilenet_groups), ('resnet18', {1})):
        backbone = build_backbone(name)
        add_lgconv(backbone, LGConvConfig(stages=[4], depthwise_proj=depthwise_proj))
        assert {m.proj.groups for m in backbone.modules() if isinstance(m, LGConv)} == expected, name
    with pytest.raises(ValueError, match='depthwise_proj'):
        add_lgconv(build_backbone('mobilenet_v2'), LGConvConfig(depthwise_proj='sparse'))


@pytest.mark.parametrize('per_stage, expected', [
    (0, ['layers.12', 'layers.13', 'layers.14', 'layers.15']),  # every eligible conv of the stage (former behaviour)
    (1, ['layers.15']),
    (2, ['layers.14', 'layers.15']),
    (9, ['layers.12', 'layers.13', 'layers.14', 'layers.15']),  # more than the stage has: all of them
])
def test_per_stage_wraps_the_deepest_convs_of_each_stage(per_stage, expected):
    """``lgconv.per_stage`` = N keeps LGConv on the last N eligible convs of each chosen stage, in forward order."""
    backbone = build_backbone('mobilenet_v2')
    assert add_lgconv(backbone, LGConvConfig(stages=[4], per_stage=per_stage)) == len(expected)
    wrapped = [name for name, m in backbone.named_modules() if isinstance(m, LGConv)]
    assert wrapped == [f'{block}.conv_3x3' for block in expected]
    resnet = build_backbone('resnet18')  # stages 3 and 4: two blocks of two 3x3 convs each
    assert add_lgconv(resnet, LGConvConfig(stages=[3, 4], per_stage=1)) == 2
    assert [n for n, m in resnet.named_modules() if isinstance(m, LGConv)] == [
        'stages.2.layers.1.layer.1', 'stages.3.layers.1.layer.1']
    with pytest.raises(ValueError, match='per_stage'):
        add_lgconv(build_backbone('resnet18'), LGConvConfig(per_stage=-1))
