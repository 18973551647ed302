"""Synthetic RGB-D generator: exact depth (analytic ray-plane/box checks), determinism, presets."""
from __future__ import annotations

import numpy as np
import pytest

from disdepth.config import DataConfig
from disdepth.data import build_dataset
from disdepth.data.raycast import Scene, cast
from disdepth.data.synthetic import SyntheticScenes, rotation

K = np.array([[100.0, 0, 31.5], [0, 110.0, 23.5], [0, 0, 1]], np.float32)
H, W = 48, 64


def test_ground_plane_depth_matches_ray_plane_formula():
    """A camera h m above a plane, pitched down by p: z-depth(v) = h / (sin p + (v - cy)/fy cos p), else sky."""
    h, pitch = 1.65, np.radians(7.0)
    scene = Scene(planes=[((0, 1, 0), h, 0)])
    hits = cast(scene, K, rotation(pitch, 0.0, 0.0), (0, 0, 0), height=H, width=W)
    v = np.arange(H, dtype=np.float64)[:, None].repeat(W, 1)
    denom = np.sin(pitch) + (v - K[1, 2]) / K[1, 1] * np.cos(pitch)
    expected = np.where(denom > 0, h / np.where(denom > 0, denom, 1), np.inf)
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(hits.t), finite)
    usable = expected < 1000  # grazing rows near the horizon are ill-conditioned in float32
    assert usable.sum() > H * W // 3
    np.testing.assert_allclose(hits.t[usable], expected[usable], rtol=1e-5)


def test_tilted_plane_depth_is_exact():
    """A plane n.X = d seen by a yawed camera: t = d / (n . r) with r = R (x~, y~, 1), z-depth = t."""
    n = np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])
    d, R = 4.0, rotation(0.05, 0.2, 0.01)
    hits = cast(Scene(planes=[(n, d, 0)]), K, R, (0, 0, 0), height=H, width=W)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1) @ R.T.astype(np.float64)
    expected = d / (rays @ n)
    np.testing.assert_allclose(hits.t, expected, rtol=1e-5)


def test_box_face_at_known_distance_and_occlusion():
    """A fronto-parallel box face 5 m away reads 5 m everywhere on it, and hides the wall behind it."""
    scene = Scene(planes=[((0, 0, 1), 9.0, 0)], boxes=[((-1, -1, 5.0), (1, 1, 6.0), 1)])
    hits = cast(scene, K, np.eye(3, dtype=np.float32), (0, 0, 0), height=H, width=W)
    # pixel centres whose ray x/z and y/z lie inside +-1/5
    v, u = np.mgrid[0:H, 0:W]
    inside = (np.abs((u - K[0, 2]) / K[0, 0]) < 0.2 - 1e-3) & (np.abs((v - K[1, 2]) / K[1, 1]) < 0.2 - 1e-3)
    outside = (np.abs((u - K[0, 2]) / K[0, 0]) > 0.2 + 1e-3) | (np.abs((v - K[1, 2]) / K[1, 1]) > 0.2 + 1e-3)
    np.testing.assert_allclose(hits.t[inside], 5.0, rtol=1e-6)
    np.testing.assert_allclose(hits.t[outside], 9.0, rtol=1e-6)
    assert set(np.unique(hits.prim[inside])) == {1}


def test_cylinder_depth_matches_circle_intersection():
    """A vertical pole of radius 0.5 m centred 6 m ahead: the centre column reads 5.5 m."""
    scene = Scene(cylinders=[(0.0, 6.0, 0.5, -2.0, 2.0, 0)])
    K2 = np.array([[100.0, 0, 32.0], [0, 100.0, 24.0], [0, 0, 1]], np.float32)
    hits = cast(scene, K2, np.eye(3, dtype=np.float32), (0, 0, 0), height=H, width=W)
    assert hits.t[24, 32] == pytest.approx(5.5, rel=1e-6)
    assert np.isinf(hits.t[24, 0])  # misses beside the pole


@pytest.mark.parametrize('preset', ['outdoor', 'indoor'])
def test_same_seed_same_image_different_index_differs(preset):
    """Determinism per (seed, index): CI and resumed runs see the same data; indices give new scenes."""
    a = SyntheticScenes(preset, 40, 64, seed=3).render(5)
    b = SyntheticScenes(preset, 40, 64, seed=3).render(5)
    c = SyntheticScenes(preset, 40, 64, seed=3).render(6)
    d = SyntheticScenes(preset, 40, 64, seed=4).render(5)
    assert np.array_equal(a['image'], b['image']) and np.array_equal(a['depth'], b['depth'])
    assert not np.array_equal(a['depth'], c['depth'])
    assert not np.array_equal(a['image'], d['image'])


def test_presets_camera_units_and_ranges():
    """Outdoor: KITTI focal scaled by width, sky invalid, depth <= 80 m; indoor: NYU focal, <= 10 m."""
    out = SyntheticScenes('outdoor', 96, 320, seed=0)
    r = out.render(0)
    assert r['image'].dtype == np.uint8 and r['image'].shape == (96, 320, 3)
    assert r['depth'].dtype == np.float32 and r['depth'].shape == (96, 320)
    assert r['K'][0, 0] == pytest.approx(721.5377 * 320 / 1242, rel=1e-5)
    assert r['K'][0, 0] == r['K'][1, 1]
    assert r['depth'].max() <= 80.0 and (r['depth'] == 0).any()  # sky rows are invalid
    assert (r['depth'][-1] > 0).all() and r['depth'][-1].max() < 15  # the road just ahead
    ind = SyntheticScenes('indoor', 120, 160, seed=0)
    r = ind.render(0)
    assert r['K'][0, 0] == pytest.approx(518.8579 * 160 / 640, rel=1e-5)
    assert (r['depth'] > 0).all() and r['depth'].max() <= 10.0


def test_unknown_preset_is_rejected():
    """A typo in the preset must fail loudly, naming the valid ones."""
    with pytest.raises(ValueError, match='outdoor'):
        SyntheticScenes('forest', 10, 10)


def test_synthetic_dataset_items_and_split_disjoint():
    """Items follow the data contract; train and test scenes differ; test is unaugmented and sized eval_*."""
    cfg = DataConfig(dataset='synthetic_indoor', height=32, width=48, eval_height=40, eval_width=56,
                     max_depth=10.0, num_train=3, num_test=2)
    train, test = build_dataset(cfg, 'train'), build_dataset(cfg, 'test')
    assert len(train) == 3 and len(test) == 2
    a, b = train[0], test[0]
    assert a['image'].shape == (3, 32, 48) and b['image'].shape == (3, 40, 56)
    assert a['mask'].dtype.is_floating_point is False and b['depth'].shape == (1, 40, 56)
    assert b['focal'] == pytest.approx(518.8579 * 56 / 640, rel=1e-5)
    assert np.array_equal(test[1]['image'].numpy(), test[1]['image'].numpy())
    mask = b['mask'][0].numpy()
    assert np.array_equal(mask, (b['depth'][0].numpy() > cfg.min_depth) & (b['depth'][0].numpy() <= 10.0))
