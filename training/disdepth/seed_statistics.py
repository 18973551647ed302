"""Statistics over training seeds: a row's mean, standard deviation and 95 % interval, and a paired comparison
of two rows run with the same seeds, so the ablation can say whether 0.005 abs_rel between rows is resolved.

    interval   mean ± t_{0.975, n-1} · s / sqrt(n)          s: sample standard deviation (n - 1)
    paired     d_i = b_i − a_i per seed i; mean(d) ± t_{0.975, n-1} · s_d / sqrt(n);
               resolved when that interval excludes 0

Pairing by seed removes what the seed changes in both rows alike (data order, the student's initialisation),
so a paired interval is narrower than the two rows' own intervals suggest. Student's t quantile: SciPy.
"""
from __future__ import annotations

import math
import statistics

from scipy.stats import t as student_t


def t_quantile_two_sided(df: int, confidence: float = 0.95) -> float:
    """t such that P(|T| <= t) = confidence for Student's t (df=4, 0.95: 2.776). Raises ValueError for df < 1."""
    if df < 1:
        raise ValueError(f'Student t needs at least 1 degree of freedom (2 seeds), got {df}')
    return float(student_t.ppf(0.5 + confidence / 2, df))


def interval(values: list[float], confidence: float = 0.95) -> dict:
    """{'mean', 'std', 'ci95': half-width, 'n'} of per-seed values (std and ci95 None for one value)."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return {'mean': mean, 'std': None, 'ci95': None, 'n': n}
    std = statistics.stdev(values)
    return {'mean': mean, 'std': std, 'ci95': t_quantile_two_sided(n - 1, confidence) * std / math.sqrt(n), 'n': n}


def paired(before: list[float], after: list[float], confidence: float = 0.95) -> dict:
    """Paired comparison of two rows' per-seed values (same seeds, same order): mean difference after − before,
    its 95 % half-width, and 'resolved' (the interval excludes 0).

    Raises:
        ValueError: the lists differ in length or hold fewer than 2 seeds.
    """
    if len(before) != len(after) or len(before) < 2:
        raise ValueError(f'paired comparison needs the same >= 2 seeds in both rows, got {len(before)} and '
                         f'{len(after)} values')
    diff = interval([b - a for a, b in zip(before, after, strict=True)], confidence)
    return {'mean_diff': diff['mean'], 'std_diff': diff['std'], 'ci95': diff['ci95'], 'n': diff['n'],
            'resolved': abs(diff['mean']) > diff['ci95']}
