"""ground_plane: a synthetic floor seen by a model whose scale is off by a known factor is corrected to the true
depth on the floor and elsewhere, despite obstacles; no floor, no update (and why); smoothing bounded per frame."""
import math

import numpy as np
import pytest

from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.ground_plane import (
    IMPLAUSIBLE_SCALE,
    LOW_INLIER_RATIO,
    NO_GROUND_PLANE,
    NO_GROUND_POINTS,
    GroundPlaneScale,
    fit_ground_plane,
    ground_samples,
)

HEIGHT_M = 0.6  # camera above the floor
CAMERA = CameraModel(525.0, 525.0, 319.5, 239.5, 640, 480)
SMALL = CameraModel(262.5, 262.5, 159.5, 119.5, 320, 240)


def _scene(camera=CAMERA, pitch_deg=8.0, wall_m=6.0, obstacles=((80, 250, 260, 420, 1.2), (420, 560, 300, 480, 1.6))):
    """True depth (float32 [H,W] m) of a floor HEIGHT_M below a camera pitched down ``pitch_deg``, a fronto-parallel
    wall at ``wall_m`` where the floor is farther or absent, and boxes (u0, u1, v0, v1, depth) in front."""
    v, u = np.mgrid[:camera.height, :camera.width].astype(np.float64)
    ray_y = (v - camera.cy) / camera.fy
    pitch = math.radians(pitch_deg)
    up_dot_ray = -math.cos(pitch) * ray_y - math.sin(pitch)  # world up in the camera frame: (0, -cos, -sin)
    with np.errstate(divide='ignore'):
        floor = np.where(up_dot_ray < 0, -HEIGHT_M / up_dot_ray, np.inf)
    depth = np.minimum(floor, wall_m)
    for u0, u1, v0, v1, box in obstacles:
        depth[v0:v1, u0:u1] = np.minimum(depth[v0:v1, u0:u1], box)
    return depth.astype(np.float32), floor < wall_m


def _predict(depth, factor, noise=0.02, seed=1):
    """A model off by ``factor`` with 2 % multiplicative noise per pixel."""
    rng = np.random.default_rng(seed)
    return (depth * factor * (1 + noise * rng.standard_normal(depth.shape))).astype(np.float32)


@pytest.mark.parametrize('model_factor', [1.6, 0.7])
def test_corrected_depth_is_right_on_the_floor_and_on_obstacles(model_factor):
    """A model 1.6x too far (or 0.7x) on a floor with two boxes covering a fifth of the lower image: the
    factor comes out as 1 / model_factor within 1 %, and the corrected depth matches the truth on the floor
    and on the boxes (not on the plane: the correction is global)."""
    truth, floor = _scene()
    estimator = GroundPlaneScale(HEIGHT_M)
    update = estimator.update(_predict(truth, model_factor), CAMERA)
    assert update.updated and update.reason == ''
    assert update.factor == pytest.approx(1 / model_factor, rel=0.01)
    assert 0.5 < update.inlier_ratio < 0.95  # the boxes are outliers
    corrected = _predict(truth, model_factor) * update.factor
    ratio = corrected / truth
    assert np.median(ratio[floor]) == pytest.approx(1.0, abs=0.01)
    assert np.median(ratio[260:420, 80:250]) == pytest.approx(1.0, abs=0.01)


def test_a_wall_filling_half_the_lower_view_does_not_bias_the_floor():
    """A level camera facing a wall 3 m away, with the two boxes: wall and boxes cover 60 % of the samples below
    the horizon, and the wall's points near the floor fall within the inlier band of a first fit (one
    least-squares refit left 3 % error); the refits around the refined plane bring it within 1 %."""
    truth, _ = _scene(pitch_deg=0.0, wall_m=3.0)
    update = GroundPlaneScale(HEIGHT_M).update(_predict(truth, 1.3), CAMERA)
    assert update.updated and update.inlier_ratio < 0.45
    assert update.factor * 1.3 == pytest.approx(1.0, abs=0.01)


def test_fit_recovers_the_floor_height_and_tilt():
    """Noise-free (float32 depth): the plane's distance is the camera height and its normal the pitched up axis."""
    truth, _ = _scene(pitch_deg=12.0, obstacles=())
    fit = fit_ground_plane(ground_samples(truth, CAMERA, 8), np.random.default_rng(0))
    assert fit.distance == pytest.approx(HEIGHT_M, rel=1e-5)
    np.testing.assert_allclose(fit.normal, [0.0, -math.cos(math.radians(12)), -math.sin(math.radians(12))],
                               atol=1e-5)
    assert fit.inlier_ratio == pytest.approx(1.0)


def test_no_floor_in_view_leaves_the_factor_and_says_why():
    """A wall filling the view (normal along the optical axis, 90 degrees from up) is never taken for the floor;
    an all-invalid depth has no samples; a floor in a sliver of the view is too few inliers to trust."""
    estimator = GroundPlaneScale(HEIGHT_M)
    first = estimator.update(_predict(_scene()[0], 2.0), CAMERA)
    assert first.updated
    wall = np.full((480, 640), 3.0, np.float32)
    nothing = np.full((480, 640), np.nan, np.float32)
    sliver, _ = _scene(obstacles=((0, 640, 240, 455, 1.0),))  # a low wall close by: floor only in the last rows
    for depth, reason in ((wall, NO_GROUND_PLANE), (nothing, NO_GROUND_POINTS), (sliver, LOW_INLIER_RATIO)):
        update = estimator.update(depth, CAMERA)
        assert (update.updated, update.reason) == (False, reason)
        assert update.factor == first.factor


def test_implausible_scale_is_refused():
    """A floor fitted 10x too far (a factor of 0.1, outside 0.2..5) is refused, not applied."""
    estimator = GroundPlaneScale(HEIGHT_M)
    update = estimator.update(_predict(_scene()[0], 10.0), CAMERA)
    assert (update.updated, update.reason, update.factor) == (False, IMPLAUSIBLE_SCALE, 1.0)
    assert update.measured == pytest.approx(0.1, rel=0.02)


def test_factor_changes_at_most_max_step_per_frame_and_converges():
    """After the first frame sets the factor, a sudden change of the model's scale (2x -> 1x) moves it by at
    most 5 % a frame, and the EMA then brings it to the new value."""
    truth, _ = _scene(SMALL, obstacles=())
    estimator = GroundPlaneScale(HEIGHT_M, stride=4)
    first = estimator.update(_predict(truth, 2.0), SMALL).factor
    assert first == pytest.approx(0.5, rel=0.01)
    factors = [first] + [estimator.update(_predict(truth, 1.0, seed=k), SMALL).factor for k in range(30)]
    assert np.all(np.abs(np.diff(np.log(factors))) <= math.log(1.05) + 1e-12)
    assert factors[1] / factors[0] == pytest.approx(1.05)  # the bound, not the EMA step (20 % of 2x), applies
    assert factors[-1] == pytest.approx(1.0, rel=0.01)


def test_same_seed_same_factors():
    """Deterministic: two estimators with one seed give identical factors on the same noisy frames."""
    truth, _ = _scene(SMALL)
    runs = [[GroundPlaneScale(HEIGHT_M, stride=4, seed=3).update(_predict(truth, 1.3, seed=k), SMALL).measured
             for k in range(3)] for _ in range(2)]
    assert runs[0] == runs[1]


def test_invalid_settings_are_refused():
    """camera_height is required and positive (the node refuses scale_correction ground_plane without it)."""
    for height in (0.0, -1.0, float('nan')):
        with pytest.raises(ValueError, match='camera_height'):
            GroundPlaneScale(height)
