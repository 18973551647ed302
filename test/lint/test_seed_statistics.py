"""disdepth.seed_statistics: Student t quantiles, intervals and the paired comparison on known answers."""
import statistics

import pytest

from disdepth.seed_statistics import interval, paired, t_quantile_two_sided


@pytest.mark.parametrize(('df', 'expected'), [(1, 12.706), (2, 4.303), (4, 2.776), (5, 2.571), (30, 2.042)])
def test_t_quantile_matches_the_tables(df, expected):
    """Two-sided 95 % critical values of Student's t (any statistics table)."""
    assert t_quantile_two_sided(df) == pytest.approx(expected, abs=1e-3)


def test_interval_of_known_values():
    """1..5: mean 3, s = sqrt(2.5), half-width 2.776 * s / sqrt(5); one value has no interval."""
    stats = interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert stats['mean'] == 3.0 and stats['std'] == pytest.approx(2.5 ** 0.5)
    assert stats['ci95'] == pytest.approx(2.7764 * 2.5 ** 0.5 / 5 ** 0.5, rel=1e-4)
    assert interval([0.2]) == {'mean': 0.2, 'std': None, 'ci95': None, 'n': 1}


def test_paired_resolves_a_consistent_small_gain_that_the_rows_spread_hides():
    """Rows whose seeds spread by 0.1 but whose paired differences are all about -0.005: resolved, and the
    unpaired intervals of the rows overlap completely."""
    before = [0.10, 0.20, 0.30, 0.15, 0.25]
    after = [b - 0.005 + e for b, e in zip(before, [0.0005, -0.0005, 0.0, 0.0003, -0.0003], strict=True)]
    result = paired(before, after)
    assert result['mean_diff'] == pytest.approx(statistics.fmean(a - b for a, b in zip(after, before, strict=True)))
    assert result['resolved'] and result['ci95'] < 0.005
    assert interval(after)['ci95'] > 0.05
    noisy = paired(before, [b + e for b, e in zip(before, [0.01, -0.01, 0.02, -0.02, 0.0], strict=True)])
    assert not noisy['resolved']
    with pytest.raises(ValueError, match='same >= 2 seeds'):
        paired([0.1, 0.2], [0.1])
