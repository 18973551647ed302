"""Distillation diagnostics: the formulas on known answers, and a tiny run logging them."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tiny_run import load_distill_module, tiny_overrides

from disdepth.distill.diagnostics import (
    attention_entropy,
    feature_cosine,
    lam_diagnostics,
    log_depth_gradient,
    top_fraction_mass,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / 'config' / 'training' / 'synthetic_demo.yaml'


def test_feature_cosine_known_answers():
    """Same direction (any positive scale) = 1, opposite = -1, orthogonal = 0; averaged over pixels."""
    a = torch.randn(2, 5, 3, 4)
    assert feature_cosine(a, 3 * a).item() == pytest.approx(1.0, abs=1e-6)
    assert feature_cosine(a, -a).item() == pytest.approx(-1.0, abs=1e-6)
    x, y = torch.zeros(1, 2, 1, 2), torch.zeros(1, 2, 1, 2)
    x[0, 0] = 1.0
    y[0, 1, 0, 0], y[0, 0, 0, 1] = 1.0, 1.0  # pixel 0 orthogonal (0), pixel 1 aligned (1)
    assert feature_cosine(x, y).item() == pytest.approx(0.5, abs=1e-6)


def test_attention_entropy_known_answers():
    """Uniform = 1, one-hot = 0, uniform over half of the pixels = log(P/2) / log(P)."""
    assert attention_entropy(torch.ones(3, 1, 4, 8)).item() == pytest.approx(1.0, abs=1e-6)
    peak = torch.zeros(1, 1, 4, 8)
    peak[..., 2, 5] = 32.0
    assert attention_entropy(peak).item() == pytest.approx(0.0, abs=1e-6)
    half = torch.zeros(1, 1, 4, 8)
    half[..., :2, :] = 2.0
    assert attention_entropy(half).item() == pytest.approx(math.log(16) / math.log(32), abs=1e-6)
    assert attention_entropy(torch.ones(2, 1, 1, 1)).item() == 1.0


def test_top_fraction_mass_counts_attention_on_the_top_valid_pixels():
    """Uniform attention puts ceil(f*n)/n on the top pixels; attention on the top pixel only puts 1 there;
    invalid pixels count neither in the ranking nor in the total."""
    score = torch.arange(10.0).view(1, 1, 2, 5)
    valid = torch.ones(1, 1, 2, 5, dtype=torch.bool)
    assert top_fraction_mass(torch.ones(1, 1, 2, 5), score, valid, 0.2).item() == pytest.approx(0.2)
    on_top = torch.zeros(1, 1, 2, 5)
    on_top[..., 1, 4] = 10.0
    assert top_fraction_mass(on_top, score, valid, 0.2).item() == pytest.approx(1.0)
    valid[..., 1, 4] = False  # the top pixel is invalid now: the next one (score 8) is the top
    on_second = torch.zeros(1, 1, 2, 5)
    on_second[..., 1, 3] = 1.0
    on_second[..., 1, 4] = 100.0  # ignored: invalid
    assert top_fraction_mass(on_second, score, valid, 0.1).item() == pytest.approx(1.0)


def test_lam_diagnostics_find_attention_on_a_depth_edge_and_on_far_pixels():
    """Depth steps 5 m -> 40 m at column 4 of 8: attention on the step's column has edge share 1; on a depth
    ramp, attention on the farthest row has far share 1; uniform attention gives the baselines."""
    depth = torch.full((1, 1, 4, 8), 5.0)
    depth[..., 4:] = 40.0
    mask = torch.ones_like(depth, dtype=torch.bool)
    assert log_depth_gradient(depth, mask)[0, 0, 0].tolist() == pytest.approx([0, 0, 0, math.log(8), 0, 0, 0, 0])
    on_edge = torch.zeros(1, 1, 4, 8)
    on_edge[..., 3] = 8.0
    ramp = torch.arange(1.0, 33.0).view(1, 1, 4, 8)  # distinct depths: the farthest third is well defined
    on_far_row = torch.zeros(1, 1, 4, 8)
    on_far_row[..., 3, :] = 4.0
    d_edge = lam_diagnostics([on_edge], depth, mask)
    d_far = lam_diagnostics([on_far_row], ramp, mask)
    d_uniform = lam_diagnostics([torch.ones(1, 1, 4, 8)], depth, mask)
    assert d_edge['lam_edge_mass_1'].item() == pytest.approx(1.0)
    assert d_far['lam_far_mass_1'].item() == pytest.approx(1.0)
    assert d_uniform['lam_entropy_1'].item() == pytest.approx(1.0)
    assert d_uniform['lam_far_mass_1'].item() == pytest.approx(11 / 32)  # ceil(32/3) of 32 pixels
    assert d_uniform['lam_edge_mass_1'].item() == pytest.approx(7 / 32)  # ceil(0.2*32) of 32 pixels


@pytest.mark.slow
def test_tiny_distillation_run_logs_every_diagnostic_to_tensorboard(tmp_path):
    """A tiny DisDepth run with LGConv: FAM, LAM and LGConv scalars are in the event files, finite, at
    every logged step, and the attention image is written at the preview step."""
    distill = load_distill_module()
    out = tmp_path / 'run'
    assert distill.main(['--config', str(DEMO), 'teacher.path=null',
                         *tiny_overrides(out, model__lgconv__enabled='true', trainer__preview_every=2)]) == 0
    events = EventAccumulator(str(out / 'tensorboard'), size_guidance={'scalars': 0, 'images': 0}).Reload()
    tags = events.Tags()
    expected = [f'diagnostics/{name}_{level}' for level in range(1, 5)
                for name in ('fam_cosine', 'lam_entropy', 'lam_edge_mass', 'lam_far_mass')]
    expected += ['diagnostics/lgconv_0_gamma_abs_mean', 'diagnostics/lgconv_0_gamma_abs_max',
                 'diagnostics/lgconv_0_gate_mean', 'diagnostics/lgconv_0_branch_ratio',
                 'train/silog_teacher', 'train/silog_student']
    for tag in expected:
        values = [e.value for e in events.Scalars(tag)]
        assert [e.step for e in events.Scalars(tag)] == [1, 2, 3, 4], tag
        assert all(math.isfinite(v) for v in values), (tag, values)
    assert 0.0 <= events.Scalars('diagnostics/lam_entropy_1')[-1].value <= 1.0 + 1e-6
    assert 'preview/image_lam_attention' in tags['images']
