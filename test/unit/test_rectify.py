"""rectify: image_proc's rectification (OpenCV's own maps + remap) from CameraInfo fields, maps cached per
calibration, edge points moved where the distortion formula puts them, and each unusable calibration named."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from depth_kd_ros.camera.calibration import Calibration
from depth_kd_ros.camera.model import CameraInfoError, CameraModel
from depth_kd_ros.camera.rectify import Rectifier, rectified_calibration
from depth_kd_ros.messages import fill_calibration

WIDTH, HEIGHT = 640, 480
K = [500.0, 0.0, 322.0, 0.0, 505.0, 236.0, 0.0, 0.0, 1.0]
# a rectified camera unlike K (as alpha < 1 or stereo gives): 0.8 x focal, moved principal point, Tx of a right camera
P = [400.0, 0.0, 316.0, -24.0, 0.0, 404.0, 244.0, 0.0, 0.0, 0.0, 1.0, 0.0]
R_SMALL = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))[0].reshape(-1).tolist()
D = {'plumb_bob': [-0.28, 0.07, 0.001, -0.0005, 0.0],
     'rational_polynomial': [0.4, -0.1, 0.001, -0.0005, 0.01, 0.7, -0.05, 0.02],
     'equidistant': [-0.01, 0.02, -0.005, 0.001]}


def _info(model, *, d=None, k=K, r=R_SMALL, p=P, width=WIDTH, height=HEIGHT):
    """A CameraInfo as rclpy or rosbags gives it (sequences; only field names matter)."""
    return SimpleNamespace(width=width, height=height, distortion_model=model, d=list(D[model] if d is None else d),
                           k=list(k), r=list(r), p=list(p), binning_x=0, binning_y=0)


def _frame(channels=3):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (HEIGHT, WIDTH, channels), dtype=np.uint8)


@pytest.mark.parametrize('model', ['plumb_bob', 'rational_polynomial', 'equidistant'])
def test_rectified_frame_equals_opencv_maps_and_remap(model):
    """Per distortion model, the frame equals OpenCV's initUndistortRectifyMap (fisheye's for equidistant) with
    K, D, R, P at CV_16SC2 + remap INTER_LINEAR: what image_proc's rectify node publishes."""
    k, d = np.array(K).reshape(3, 3), np.array(D[model])
    r, p = np.array(R_SMALL).reshape(3, 3), np.array(P).reshape(3, 4)
    init = cv2.fisheye.initUndistortRectifyMap if model == 'equidistant' else cv2.initUndistortRectifyMap
    map1, map2 = init(k, d, r, p, (WIDTH, HEIGHT), cv2.CV_16SC2)
    frame = _frame()
    expected = cv2.remap(frame, map1, map2, cv2.INTER_LINEAR)
    out = Rectifier().rectify(frame, _info(model))
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out, frame)


def _distort(model, x, y):
    """Raw normalised coordinates of the undistorted ray (x, y, 1), by the formulas of rectify's docstring."""
    d, r2 = D[model], x * x + y * y
    if model == 'equidistant':
        r = np.sqrt(r2)
        theta = np.arctan(r)
        theta_d = theta * (1 + sum(c * theta ** (2 * i + 2) for i, c in enumerate(d)))
        return x * theta_d / r, y * theta_d / r
    k1, k2, p1, p2, k3 = d[:5]
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    if model == 'rational_polynomial':
        radial /= 1 + d[5] * r2 + d[6] * r2 ** 2 + d[7] * r2 ** 3
    return (x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y)


@pytest.mark.parametrize('model', ['plumb_bob', 'rational_polynomial', 'equidistant'])
def test_a_point_near_the_edge_lands_where_the_rectified_camera_p_projects_it(model):
    """A bright dot drawn where the lens puts a ray (raw pixel by the distortion formula and K) is found after
    rectification where P projects the same ray: tens of pixels away from where it was, within 0.1 px."""
    ray = np.array([0.62, 0.41])  # near the bottom-right corner
    raw = np.array(_distort(model, *ray)) * [K[0], K[4]] + [K[2], K[5]]
    rectified = ray * [P[0], P[5]] + [P[2], P[6]]  # R identity: the ray is the same in the rectified camera
    v, u = np.mgrid[:HEIGHT, :WIDTH]
    dot = 200.0 * np.exp(-((u - raw[0]) ** 2 + (v - raw[1]) ** 2) / (2 * 1.5 ** 2))
    out = Rectifier().rectify(dot.astype(np.float32), _info(model, r=[1, 0, 0, 0, 1, 0, 0, 0, 1]))
    row, col = np.unravel_index(np.argmax(out), out.shape)
    window = out[row - 7:row + 8, col - 7:col + 8]
    grid_v, grid_u = np.mgrid[row - 7:row + 8, col - 7:col + 8]
    found = np.array([(window * grid_u).sum(), (window * grid_v).sum()]) / window.sum()
    assert np.linalg.norm(raw - rectified) > 20
    np.testing.assert_allclose(found, rectified, atol=0.1)


def test_maps_are_built_once_per_calibration():
    """Equal calibrations in new messages reuse the maps (a 640x480 map build costs milliseconds); a changed D
    builds new ones."""
    rectifier = Rectifier()
    frame = _frame()
    first = rectifier.rectify(frame, _info('plumb_bob'))
    np.testing.assert_array_equal(rectifier.rectify(frame, _info('plumb_bob')), first)
    assert rectifier.maps_built == 1
    rectifier.rectify(frame, _info('plumb_bob', d=[-0.2, 0.05, 0.0, 0.0, 0.0]))
    assert rectifier.maps_built == 2


def test_zero_distortion_passes_the_frame_unchanged():
    """D all zero or empty: the frame is returned as it came (image_proc publishes it unchanged), whatever the
    model string; a rectified image_rect with its raw camera_info would be distorted twice otherwise."""
    frame = _frame()
    for info in (_info('plumb_bob', d=[0.0] * 5), _info('plumb_bob', d=[]), _info('unknown_model', d=[])):
        assert Rectifier().rectify(frame, info) is frame


def test_driver_filling_only_k_and_d_rectifies_to_k():
    """R and P all zero (a driver without rectification data): R is the identity and P is K, as cv2.undistort
    does, instead of maps built from zeros."""
    info = _info('plumb_bob', r=[0.0] * 9, p=[0.0] * 12)
    k = np.array(K).reshape(3, 3)
    maps = cv2.initUndistortRectifyMap(k, np.array(D['plumb_bob']), np.eye(3), k, (WIDTH, HEIGHT), cv2.CV_16SC2)
    frame = _frame()
    np.testing.assert_array_equal(Rectifier().rectify(frame, info), cv2.remap(frame, *maps, cv2.INTER_LINEAR))
    assert rectified_calibration(Calibration.from_camera_info(info)).k == tuple(K)


@pytest.mark.parametrize(('info', 'kind'), [
    (_info('fov', d=[0.9]), 'unknown_distortion_model'),
    (_info('plumb_bob', d=[-0.2, 0.05, 0.0, 0.0]), 'bad_distortion_length'),
    (_info('equidistant', d=D['plumb_bob']), 'bad_distortion_length'),
    (_info('plumb_bob', k=[0.0] * 9), 'bad_focal'),
    (_info('plumb_bob', p=P[:9]), 'bad_p'),
    (_info('plumb_bob', d=[float('nan')] * 5), 'bad_camera_info'),
    (_info('plumb_bob', width=320, height=240), 'camera_size_mismatch'),
], ids=['unknown_model', 'plumb_bob_4', 'equidistant_5', 'uncalibrated_k', 'short_p', 'nan_d', 'binned'])
def test_unusable_calibrations_raise_one_error_with_a_stable_kind(info, kind):
    """An unknown model or a D of the wrong length is never guessed: one CameraInfoError naming it, with a
    kind for the diagnostics count; a frame of another size (binning, roi) too."""
    with pytest.raises(CameraInfoError) as error:
        Rectifier().rectify(_frame(), info)
    assert error.value.kind == kind
    assert '\n' not in str(error.value)


def test_rectified_camera_info_has_zero_d_and_k_from_p():
    """depth/camera_info of a rectified frame: D zero, K = P[:3,:3], R identity, P kept (Tx too); the pinhole
    model read from it is P's, and rectifying again is a no-op."""
    rectified = rectified_calibration(Calibration.from_camera_info(_info('rational_polynomial')))
    msg = fill_calibration(SimpleNamespace(d=[], k=[], r=[], p=[]), rectified)
    assert msg.distortion_model == 'plumb_bob' and list(msg.d) == [0.0] * 5
    assert list(msg.k) == [400.0, 0.0, 316.0, 0.0, 404.0, 244.0, 0.0, 0.0, 1.0]
    assert list(msg.r) == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0] and list(msg.p) == P
    assert (msg.width, msg.height) == (WIDTH, HEIGHT)
    assert CameraModel.from_camera_info(msg.k, msg.p, WIDTH, HEIGHT) == CameraModel(400.0, 404.0, 316.0, 244.0,
                                                                                     WIDTH, HEIGHT)
    frame = _frame()
    assert Rectifier().rectify(frame, msg) is frame
