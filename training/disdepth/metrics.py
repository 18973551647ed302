"""Monocular depth metrics, per image over valid pixels, then averaged over images.

arXiv 2404.16386 section 4.1 (Tables 1-2); definitions of BTS ``bts_eval.py`` / AdaBins
``compute_errors`` (abs_rel, sq_rel, rmse, rmse_log, log10, silog = 100 sqrt(mean d^2 - (mean d)^2)
with d = log p - log g, d1..d3 = fraction with max(g/p, p/g) < 1.25^k; p clipped to
[min_depth, max_depth] first). The one implementation lives in the numpy-only runtime module
``depth_kd_ros.metrics`` so that the robot-side offline tool and training compute identical numbers;
this module re-exports it for the training library.
"""
from __future__ import annotations

from depth_kd_ros.metrics import LOWER_IS_BETTER, METRIC_KEYS, MetricAverager, compute_metrics, format_table

__all__ = ['LOWER_IS_BETTER', 'METRIC_KEYS', 'MetricAverager', 'compute_metrics', 'format_table']
