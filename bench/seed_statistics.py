"""Statistics over training seeds: a row's mean, standard deviation and 95 % interval, and a paired comparison
of two rows run with the same seeds (issue 18: can the ablation resolve 0.005 abs_rel between rows?).

    interval   mean ± t_{0.975, n-1} · s / sqrt(n)          s: sample standard deviation (n - 1)
    paired     d_i = b_i − a_i per seed i; mean(d) ± t_{0.975, n-1} · s_d / sqrt(n);
               resolved when that interval excludes 0

Pairing by seed removes what the seed changes in both rows alike (data order, the student's initialisation),
so a paired interval is narrower than the two rows' own intervals suggest. Student's t quantile from its
density (no SciPy in the environment): Simpson's rule on [0, t] and bisection, accurate to about 1e-6.
"""
from __future__ import annotations

import math
import statistics


def _t_density(x: float, df: int) -> float:
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1) / 2 * math.log1p(x * x / df))


def _t_mass_0_to(x: float, df: int, intervals: int = 2000) -> float:
    """P(0 <= T <= x) for Student's t with ``df`` degrees of freedom, Simpson's rule."""
    h = x / intervals
    total = _t_density(0.0, df) + _t_density(x, df)
    total += sum((4 if i % 2 else 2) * _t_density(i * h, df) for i in range(1, intervals))
    return total * h / 3


def t_quantile_two_sided(df: int, confidence: float = 0.95) -> float:
    """t such that P(|T| <= t) = confidence (df=4, 0.95: 2.776). Raises ValueError for df < 1."""
    if df < 1:
        raise ValueError(f'Student t needs at least 1 degree of freedom (2 seeds), got {df}')
    target, low, high = confidence / 2, 0.0, 1.0
    while _t_mass_0_to(high, df) < target:
        high *= 2
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if _t_mass_0_to(mid, df) < target else (low, mid)
    return (low + high) / 2


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
