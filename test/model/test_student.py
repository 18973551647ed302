"""Student end to end: shapes and depth range at KITTI-like and NYU-like sizes, decode split, cost."""
from pathlib import Path

import pytest
import torch

from disdepth.config import ModelConfig, load_config
from disdepth.models.backbones import BACKBONES
from disdepth.models.complexity import count_flops, count_parameters
from disdepth.models.lgconv import LGConv
from disdepth.models.student import build_student

SIZES = [(352, 704), (480, 640)]  # KITTI train crop, NYU frame
CONFIGS = Path(__file__).resolve().parents[2] / 'config' / 'training'


def student(backbone='mobilenet_v2', head='bins', **kw):
    cfg = ModelConfig(backbone=backbone, head=head, **kw)
    return build_student(cfg).eval()


FAST_DECODER = dict(decoder_separable_steps=[0, 2], decoder_channels=[32, 16, 16])


@pytest.mark.parametrize('backbone,head,decoder', [(b, 'bins', {}) for b in sorted(BACKBONES)] + [
    ('mobilenet_v2', 'plain', {}), ('mobilenet_v2', 'bins', FAST_DECODER), ('resnet18', 'plain', FAST_DECODER)])
def test_shapes_and_depth_range(backbone, head, decoder):
    """Every backbone/head/decoder gives depth [1,1,H,W] in metres within the model's range at both protocol
    sizes (a stride-4 decoder with separable steps included)."""
    model = student(backbone, head, min_depth=1e-3, max_depth=80.0, **decoder)
    for height, width in SIZES:
        with torch.no_grad():
            out = model(torch.rand(1, 3, height, width))
        depth = out['depth']
        assert depth.shape == (1, 1, height, width)
        assert torch.isfinite(depth).all()
        assert depth.min() >= (1e-3 if head == 'bins' else 0.0) and depth.max() <= 80.0
        assert [f.shape[1] for f in out['features']] == [i['num_chs'] for i in model.feature_info]
        if head == 'bins':
            assert out['depth_std'].shape == depth.shape and (out['depth_std'] >= 0).all()
        else:
            assert 'depth_std' not in out


def test_decode_via_functional_call_keeps_student_weights_out():
    """The ghost decoder runs decode with detached student weights: gradient reaches features only."""
    model = student(decoder_channels=[16, 16, 8, 8], num_bins=8).train()
    image = torch.rand(2, 3, 64, 96)
    feats = [f.detach().requires_grad_() for f in model.encode(image)]
    detached = {k: v.detach() for k, v in model.named_parameters()}
    detached.update(dict(model.named_buffers()))
    out = torch.func.functional_call(model, detached, (), {'features': feats, 'out_size': (64, 96)})
    out['depth'].mean().backward()
    assert out['depth'].shape == (2, 1, 64, 96)
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        direct = model.decode(feats, (64, 96))['depth']
        called = torch.func.functional_call(model, detached, (), {'features': feats, 'out_size': (64, 96)})
    assert torch.allclose(direct, called['depth'])


def test_forward_without_inputs_raises():
    """A call with neither an image nor features is a programming error, said plainly."""
    with pytest.raises(ValueError, match='image'):
        student(decoder_channels=[8, 8, 8, 8])()


def test_invalid_config_raises():
    """Wrong heads or depth ranges fail at build time, naming the problem."""
    with pytest.raises(ValueError, match='head'):
        student(head='softmax')
    with pytest.raises(ValueError, match='min_depth'):
        student(min_depth=10.0, max_depth=1.0)


def test_complexity_counts():
    """Parameter and FLOP counts see the LGConv branches (more of both), and FLOPs grow with pixels."""
    cfg_off = ModelConfig(backbone='resnet18')
    cfg_off.lgconv.enabled = False
    off, on = build_student(cfg_off), build_student(ModelConfig(backbone='resnet18')).train()
    assert count_parameters(on) > count_parameters(off) > 11_000_000  # ResNet-18 alone has 11.2 M
    assert count_flops(on, 64, 128) > count_flops(off, 64, 128) > 0
    assert count_flops(off, 128, 256) == pytest.approx(4 * count_flops(off, 64, 128), rel=0.05)
    assert on.training  # count_flops restores the mode it found


@pytest.mark.parametrize('name', ['disdepth_r18_kitti_24e', 'disdepth_r18_nyu_24e'])
def test_paper_configs_give_the_paper_student(name):
    """The paper-scale configs pin every architecture key, so the deployed student's faster choices (separable
    decoder, fewer LGConvs, channelwise W_o) never reach them: dense 3x3 decoder [256, 128, 64, 32], 256 bins,
    LGConv (8 heads, r = 4, dense W_o) on all four 3x3 convs of ResNet-18's stage 4."""
    cfg = load_config(CONFIGS / f'{name}.yaml', ['model.pretrained=null']).model
    assert (cfg.backbone, cfg.head, cfg.num_bins, cfg.decoder_channels) == ('resnet18', 'bins', 256, [256, 128, 64, 32])
    assert cfg.decoder_separable_steps == []
    lg = cfg.lgconv
    assert (lg.enabled, lg.stages, lg.per_stage, lg.heads, lg.reduction) == (True, [4], 0, 8, 4)
    model = build_student(cfg)
    wrapped = [m for m in model.modules() if isinstance(m, LGConv)]
    assert len(wrapped) == 4 and {m.proj.groups for m in wrapped} == {1}
    decoder_convs = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(decoder_convs) == 4 and all(c.kernel_size == (3, 3) and c.groups == 1 for c in decoder_convs)
    # the paper-scale student, unchanged by the CPU-speed defaults (ResNet-18 11.2 M + LGConv + decoder + head)
    assert count_parameters(model) == 15_567_232


def test_lgconv_leaves_the_rest_of_the_students_initialisation_unchanged():
    """Same seed, LGConv on or off: backbone, decoder and head start from the same weights (the
    ablation compares the two rows seed by seed, which only isolates LGConv if nothing else differs)."""
    cfg = load_config(CONFIGS / 'synthetic_demo.yaml').model
    torch.manual_seed(0)
    model = build_student(cfg)
    cfg.lgconv.enabled = False
    torch.manual_seed(0)
    without = build_student(cfg).state_dict()
    wrapped = [name for name, m in model.named_modules() if isinstance(m, LGConv)]
    assert wrapped
    # a wrapped conv layer's own weights move under '<layer>.local.'; everything else under <layer> is the branch's
    shared = {name.replace('.local.', '.'): value for name, value in model.state_dict().items()
              if not any(name.startswith(w + '.') for w in wrapped) or '.local.' in name}
    assert set(shared) == set(without)
    assert all(torch.equal(shared[name], without[name]) for name in without)
