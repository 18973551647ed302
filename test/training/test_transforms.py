"""Geometric transforms keep K consistent with where 3D points land in the image."""
from __future__ import annotations

import numpy as np
import pytest

from disdepth.data.transforms import Sample, crop, hflip, kb_crop, resize, rotate

K0 = np.array([[500.0, 0, 40.0], [0, 500.0, 30.0], [0, 0, 1]])


def marker_sample(u: int, v: int, h: int = 60, w: int = 90) -> Sample:
    """One valid depth pixel at (u, v): where the transforms move it, K must project its 3D point."""
    depth = np.zeros((h, w), np.float32)
    depth[v, u] = 7.0
    return Sample(np.zeros((h, w, 3), np.float32), depth, K0.copy())


def project(K: np.ndarray, point: np.ndarray) -> np.ndarray:
    return (K @ point)[:2] / point[2]


def point_of(s: Sample, u: int, v: int) -> np.ndarray:
    return np.linalg.inv(s.K) @ np.array([u, v, 1.0]) * s.depth[v, u]


def test_crop_shifts_principal_point():
    """Crop at (top, left): the 3D point still projects to its (moved) pixel."""
    s = marker_sample(50, 35)
    X = point_of(s, 50, 35)
    c = crop(s, 5, 20, 40, 60)
    v, u = np.argwhere(c.depth > 0)[0]
    np.testing.assert_allclose(project(c.K, X), [u, v])
    with pytest.raises(ValueError, match='does not fit'):
        crop(s, 30, 0, 40, 60)


def test_hflip_mirrors_principal_point_and_is_an_involution():
    """hflip: cx -> W-1-cx; the marker at u lands at W-1-u; flipping twice restores the sample."""
    s = marker_sample(10, 20)
    f = hflip(s)
    assert f.depth[20, 90 - 1 - 10] == 7.0 and f.K[0, 2] == 90 - 1 - 40
    X = point_of(s, 10, 20)
    X_mirrored = X * np.array([-1, 1, 1])  # the mirrored world
    np.testing.assert_allclose(project(f.K, X_mirrored), [79, 20])
    back = hflip(f)
    assert np.array_equal(back.depth, s.depth) and np.allclose(back.K, s.K)


def test_rotation_moves_principal_point_with_the_image():
    """Rotating the image about its centre (square pixels) = camera roll + principal point M pp."""
    s = marker_sample(40, 30)  # the marker sits on the principal point
    r = rotate(s, 2.0)
    v, u = np.argwhere(r.depth > 0)[0]
    assert abs(u - r.K[0, 2]) <= 0.5 and abs(v - r.K[1, 2]) <= 0.5
    assert r.depth[v, u] == 7.0  # z-depth is unchanged by a roll
    np.testing.assert_allclose(rotate(s, 0.0).K, s.K, atol=1e-9)


def test_resize_scales_focal_and_principal_point():
    """Downscale by 2: fx/2, and pixel centres map with the half-pixel convention."""
    s = Sample(np.zeros((60, 90, 3), np.float32), np.ones((60, 90), np.float32), K0.copy())
    r = resize(s, 30, 45)
    assert r.depth.shape == (30, 45) and r.image.shape == (30, 45, 3)
    assert r.K[0, 0] == 250 and r.K[1, 1] == 250
    assert r.K[0, 2] == pytest.approx((40 + 0.5) / 2 - 0.5) and r.K[1, 2] == pytest.approx((30 + 0.5) / 2 - 0.5)


def test_kb_crop_takes_bottom_rows_and_centred_columns():
    """KB crop of 375x1242: rows 23..375, columns 13..1229 (BTS)."""
    depth = np.arange(375 * 1242, dtype=np.float32).reshape(375, 1242)
    c = kb_crop(Sample(np.zeros((375, 1242, 3), np.float32), depth, K0.copy()))
    assert c.depth.shape == (352, 1216) and c.depth[0, 0] == depth[23, 13]
    assert c.K[0, 2] == 40 - 13 and c.K[1, 2] == 30 - 23
