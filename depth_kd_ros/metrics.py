"""Monocular depth metrics (numpy only): one implementation for training/evaluate.py and the runtime.

Lives in the runtime so that ``mono_depth_offline images --gt-dir`` (on a robot, no training code)
and training/disdepth/metrics.py (which re-exports this module) compute identical numbers.

The protocol of arXiv 2404.16386 section 4.1 (Tables 1-2) and of the common KITTI/NYU evaluation
scripts (BTS ``bts_eval.py`` ``compute_errors``, AdaBins ``utils.compute_errors``). With g = ground
truth, p = prediction (metres) over the n valid pixels of one image:

    abs_rel  = mean(|g - p| / g)            sq_rel = mean((g - p)^2 / g)
    rmse     = sqrt(mean((g - p)^2))        rmse_log = sqrt(mean((log g - log p)^2))
    log10    = mean(|log10 g - log10 p|)
    silog    = 100 * sqrt(mean(d^2) - mean(d)^2),  d = log p - log g
    d_k      = mean(max(g / p, p / g) < 1.25^k),  k = 1, 2, 3

Before the metrics, p is clipped to [min_depth, max_depth] (non-finite p: NaN -> min_depth,
+-inf -> the nearer bound), as those scripts do, so a network's out-of-range output cannot
produce log(0) and a perfect prediction beyond the cap counts as the cap.
"""
from __future__ import annotations

import numpy as np

METRIC_KEYS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'silog', 'd1', 'd2', 'd3')
LOWER_IS_BETTER = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'silog')


def compute_metrics(pred, gt, mask=None, min_depth: float = 1e-3, max_depth: float = np.inf) -> dict:
    """Metrics of ONE image. pred, gt: float arrays of the same shape (e.g. [H,W] or [1,H,W]), metres;
    mask: bool array (valid pixels), default gt > 0. Pixels with gt <= 0 are never used.

    Raises:
        ValueError: the shapes differ or no pixel is valid.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {pred.shape} != ground truth shape {gt.shape}')
    valid = gt > 0 if mask is None else np.asarray(mask, bool) & (gt > 0)
    if not valid.any():
        raise ValueError('no valid ground-truth pixel in this image')
    p = np.nan_to_num(pred[valid], nan=min_depth, posinf=max_depth, neginf=min_depth)
    p = np.clip(p, min_depth, max_depth)
    g = gt[valid]
    ratio = np.maximum(g / p, p / g)
    d = np.log(p) - np.log(g)
    return dict(
        abs_rel=float(np.mean(np.abs(g - p) / g)),
        sq_rel=float(np.mean((g - p) ** 2 / g)),
        rmse=float(np.sqrt(np.mean((g - p) ** 2))),
        rmse_log=float(np.sqrt(np.mean(d ** 2))),
        log10=float(np.mean(np.abs(np.log10(g) - np.log10(p)))),
        silog=float(np.sqrt(max(np.mean(d ** 2) - np.mean(d) ** 2, 0.0)) * 100),
        d1=float(np.mean(ratio < 1.25)),
        d2=float(np.mean(ratio < 1.25 ** 2)),
        d3=float(np.mean(ratio < 1.25 ** 3)),
    )


class MetricAverager:
    """Mean of per-image metric dicts: ``update(compute_metrics(...))`` per image, then ``compute()``."""

    def __init__(self):
        self.sums = dict.fromkeys(METRIC_KEYS, 0.0)
        self.count = 0

    def update(self, metrics: dict) -> None:
        """Add one image's metrics.

        Raises:
            KeyError: a metric of METRIC_KEYS is missing.
        """
        for key in METRIC_KEYS:
            self.sums[key] += float(metrics[key])
        self.count += 1

    def compute(self) -> dict:
        """Averages over the images seen, plus ``num_images``.

        Raises:
            ValueError: no image was added.
        """
        if self.count == 0:
            raise ValueError('no image was evaluated')
        out = {key: value / self.count for key, value in self.sums.items()}
        out['num_images'] = self.count
        return out


def format_table(rows: dict) -> str:
    """Fixed-width table, one row per name: ``format_table({'student': metrics, 'teacher': metrics})``.

    Lower is better for every column but d1, d2, d3 (see LOWER_IS_BETTER).
    """
    names = list(rows)
    width = max([len('model')] + [len(n) for n in names])
    heads = list(METRIC_KEYS)
    lines = [f'{"model":<{width}} | ' + ' | '.join(f'{h:>8}' for h in heads) + ' |   images',
             '-' * width + '-|-' + '-|-'.join('-' * 8 for _ in heads) + '-|---------']
    for name in names:
        m = rows[name]
        cells = ' | '.join(f'{m[k]:8.4f}' for k in METRIC_KEYS)
        lines.append(f'{name:<{width}} | {cells} | {m.get("num_images", ""):>8}')
    return '\n'.join(lines)
