"""Depth metrics against hand computations (BTS/AdaBins compute_errors definitions)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from depth_kd_ros.metrics import METRIC_KEYS, MetricAverager, compute_metrics, format_table


def test_metrics_equal_hand_computed_values():
    """Two valid pixels, g = (2, 4), p = (1, 5): every metric by hand; the 0-depth pixel is ignored."""
    gt = np.array([[2.0, 4.0, 0.0]])
    pred = np.array([[1.0, 5.0, 7.0]])
    m = compute_metrics(pred, gt)
    assert m['abs_rel'] == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert m['sq_rel'] == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert m['rmse'] == pytest.approx(1.0)
    d = [math.log(1 / 2), math.log(5 / 4)]
    assert m['rmse_log'] == pytest.approx(math.sqrt((d[0] ** 2 + d[1] ** 2) / 2))
    assert m['log10'] == pytest.approx((abs(math.log10(1 / 2)) + abs(math.log10(5 / 4))) / 2)
    mean, mean_sq = sum(d) / 2, (d[0] ** 2 + d[1] ** 2) / 2
    assert m['silog'] == pytest.approx(100 * math.sqrt(mean_sq - mean ** 2))
    # ratios max(g/p, p/g) = 2.0 and 1.25: 1.25 is not < 1.25, 2.0 < 1.5625 no, 2.0 < 1.953 no
    assert (m['d1'], m['d2'], m['d3']) == (0.0, 0.5, 0.5)
    assert set(m) == set(METRIC_KEYS)


def test_mask_and_clipping():
    """Only masked pixels count; predictions are clipped to [min_depth, max_depth] (NaN -> min)."""
    gt = np.array([1.0, 1.0, 50.0])
    pred = np.array([1.0, 100.0, np.nan])
    m = compute_metrics(pred, gt, np.array([True, False, False]))
    assert m['abs_rel'] == 0.0 and m['d1'] == 1.0
    m = compute_metrics(pred, gt, max_depth=10.0)  # 100 -> 10, NaN -> 1e-3
    assert m['abs_rel'] == pytest.approx((0 + 9 + (50 - 1e-3) / 50) / 3)


def test_perfect_and_scaled_predictions():
    """pred = gt: zero errors, all thresholds 1; pred = 1.1 gt: abs_rel 0.1, silog 0 (scale-invariant)."""
    gt = np.random.default_rng(0).uniform(1, 80, (20, 30))
    m = compute_metrics(gt.copy(), gt)
    assert m['abs_rel'] == 0 and m['rmse'] == 0 and m['d1'] == m['d3'] == 1.0
    m = compute_metrics(gt * 1.1, gt)
    assert m['abs_rel'] == pytest.approx(0.1) and m['silog'] == pytest.approx(0.0, abs=1e-5)
    assert m['rmse_log'] == pytest.approx(math.log(1.1))


def test_errors_name_the_problem():
    """No valid pixel or mismatched shapes raise instead of returning NaN."""
    with pytest.raises(ValueError, match='no valid'):
        compute_metrics(np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match='shape'):
        compute_metrics(np.ones(3), np.ones(4))


def test_averager_is_mean_over_images_and_table_lists_rows():
    """Averaged per image (not per pixel), with num_images; the table prints every row and metric."""
    avg = MetricAverager()
    avg.update(compute_metrics(np.full(4, 2.2), np.full(4, 2.0)))
    avg.update(compute_metrics(np.full(100, 1.0), np.full(100, 1.0)))
    out = avg.compute()
    assert out['abs_rel'] == pytest.approx(0.05) and out['num_images'] == 2
    table = format_table({'student': out, 'teacher': out})
    assert 'student' in table and 'teacher' in table and 'abs_rel' in table and '0.0500' in table
    with pytest.raises(ValueError):
        MetricAverager().compute()
