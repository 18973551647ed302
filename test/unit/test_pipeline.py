"""pipeline: sizes, focal-length scale correction, camera validation, faults, on a real ORT session."""
import math

import numpy as np
import pytest

from depth_kd_ros.backends import BackendError, DepthBackend
from depth_kd_ros.camera.model import CameraInfoError, CameraModel
from depth_kd_ros.model_file import ModelFileError, read_model_info
from depth_kd_ros.params import NodeParams, ParameterError
from depth_kd_ros.pipeline import DepthPipeline, check_model_runs, focal_scale, load_pipeline
from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx, ground_image


@pytest.fixture(scope='module')
def model_path(tmp_path_factory):
    # depth = 2 m everywhere (gain 0) makes scale factors directly visible
    return build_synthetic_onnx(str(tmp_path_factory.mktemp('m') / 'flat.onnx'), gain=0.0, focal_length=50.0,
                                std_ratio=0.25)


def _pipeline(path, **overrides):
    return load_pipeline(NodeParams(model_path=path, num_threads=1, **overrides))


def _image(height, width, value=128):
    return np.full((height, width, 3), value, np.uint8)


@pytest.mark.parametrize(('height', 'width'), [(48, 64), (24, 32), (97, 131)])
def test_depth_comes_back_at_the_input_size(model_path, height, width):
    """Depth and depth_std are resized back to the input size, whatever it is (REP 118 needs it)."""
    result = _pipeline(model_path).process(_image(height, width))
    assert result.depth.shape == result.depth_std.shape == (height, width)
    assert result.depth.dtype == np.float32
    np.testing.assert_allclose(result.depth, 2.0, rtol=1e-5)


def test_focal_scaling_formula_doubles_depth_for_double_focal(model_path):
    """A camera with twice the training focal at the model input size sees depth x2 (f_cam / f_train)."""
    camera = CameraModel.from_k([200.0, 0, 60, 0, 200.0, 50, 0, 0, 1], 128, 96)  # 100 px at 64x48
    result = _pipeline(model_path).process(_image(96, 128), camera)
    assert result.scale == pytest.approx(2.0)
    np.testing.assert_allclose(result.depth, 4.0, rtol=1e-5)
    np.testing.assert_allclose(result.depth_std, 0.25 * 128 / 255 * 4.0, rtol=1e-4)


def test_focal_scaling_uses_geometric_mean_for_anisotropic_resize(model_path):
    """Non-square resize factors combine as sqrt(fx*sx * fy*sy), independent of the camera resolution."""
    info = read_model_info(model_path)
    camera = CameraModel(fx=100.0, fy=80.0, cx=50, cy=20, width=100, height=40)
    expected = math.sqrt(100.0 * 64 / 100 * 80.0 * 48 / 40) / 50.0
    assert focal_scale(camera, info) == pytest.approx(expected)


def test_focal_scaling_can_be_switched_off(model_path):
    """With focal_scaling false the model's depth is published unchanged."""
    camera = CameraModel.from_k([200.0, 0, 60, 0, 200.0, 50, 0, 0, 1], 128, 96)
    result = _pipeline(model_path, focal_scaling=False).process(_image(96, 128), camera)
    assert result.scale == 1.0
    np.testing.assert_allclose(result.depth, 2.0, rtol=1e-5)


@pytest.mark.parametrize(('k', 'size', 'kind'), [
    ([float('nan'), 0, 1, 0, 50, 1, 0, 0, 1], (64, 48), 'bad_focal'),
    ([0.0, 0, 1, 0, 50, 1, 0, 0, 1], (64, 48), 'bad_focal'),
    ([-50.0, 0, 1, 0, 50, 1, 0, 0, 1], (64, 48), 'bad_focal'),
    ([50.0, 0, 1, 0, 50, 1, 0, 0, 1], (0, 48), 'bad_camera_size'),
    ([50.0, 0, 1], (64, 48), 'bad_k'),
])
def test_bad_camera_info_is_rejected_with_kind(k, size, kind):
    """NaN, zero or negative focal lengths and zero sizes must not reach back-projection."""
    with pytest.raises(CameraInfoError) as info:
        CameraModel.from_k(k, *size)
    assert info.value.kind == kind


def test_rectified_intrinsics_come_from_p_not_k():
    """A rectified image's camera is P (REP 104, image_geometry, depth_image_proc); K is the raw image's.

    Only K was read before, so a calibrated lens (P != K after rectification) gave wrong cloud geometry and
    focal scaling; P all zeros (drivers that fill only K) falls back to K.
    """
    k = [500.0, 0, 320, 0, 505.0, 240, 0, 0, 1]
    p = [430.0, 0, 300, 0, 0, 432.0, 250, 0, 0, 0, 1, 0]
    camera = CameraModel.from_camera_info(k, p, 640, 480)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (430.0, 432.0, 300.0, 250.0)
    camera = CameraModel.from_camera_info(k, [0.0] * 12, 640, 480)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (500.0, 505.0, 320.0, 240.0)
    with pytest.raises(CameraInfoError) as info:
        CameraModel.from_camera_info(k, [float('nan')] + p[1:], 640, 480)
    assert info.value.kind == 'bad_focal'


def test_camera_size_mismatch_raises(model_path):
    """camera_info for another resolution would give wrong geometry: process refuses it."""
    camera = CameraModel.from_k([50.0, 0, 32, 0, 50, 24, 0, 0, 1], 64, 48)
    with pytest.raises(CameraInfoError) as info:
        _pipeline(model_path).process(_image(96, 128), camera)
    assert info.value.kind == 'camera_size_mismatch'


def test_cloud_and_preview_only_when_requested(model_path):
    """No camera means no cloud; the preview is computed only when asked for (nobody subscribed)."""
    pipeline = _pipeline(model_path, points_stride=4)
    camera = CameraModel.from_k([50.0, 0, 32, 0, 50, 24, 0, 0, 1], 64, 48)
    bare = pipeline.process(_image(48, 64), None, want_colored=False)
    assert bare.cloud is None and bare.colored is None and 'cloud' not in bare.timings
    full = pipeline.process(_image(48, 64), camera, want_colored=True)
    assert (full.cloud.height, full.cloud.width) == (12, 16)
    assert full.colored.shape == (48, 64, 3) and full.colored.dtype == np.uint8
    assert {'resize', 'inference', 'postprocess', 'cloud', 'colorize'} <= set(full.timings)
    assert full.depth_std is not None
    assert pipeline.process(_image(48, 64), camera, want_std=False).depth_std is None


def test_4k_frame_is_processed(model_path):
    """A 4K UHD frame (within max_input_pixels by default) is resized down and answered at full size."""
    result = _pipeline(model_path).process(_image(2160, 3840))
    assert result.depth.shape == (2160, 3840)
    assert np.isfinite(result.depth).all()


class _BrokenBackend(DepthBackend):
    """Our own backend interface returning a wrong shape or raising, as a faulty runtime would."""

    def __init__(self, fail):
        self.fail = fail

    def infer(self, image):
        if self.fail:
            raise BackendError('device lost')
        return {'depth': np.ones((1, 1, 3, 3), np.float32)}


@pytest.mark.parametrize('fail', [True, False])
def test_backend_faults_surface_as_backend_error(model_path, fail):
    """A raising backend or one returning the wrong shape gives BackendError, which the node counts."""
    pipeline = DepthPipeline(_BrokenBackend(fail), read_model_info(model_path), NodeParams(model_path=model_path))
    with pytest.raises(BackendError):
        pipeline.process(_image(48, 64))


class _MissingOutputBackend(_BrokenBackend):
    """A runtime whose output unpacking fails with a plain ValueError (zip(strict=True) on a missing output)."""

    def infer(self, image):
        raise ValueError('zip() argument 2 is shorter than argument 1')


@pytest.mark.parametrize('backend', [_BrokenBackend(True), _BrokenBackend(False), _MissingOutputBackend(False)],
                         ids=['raises', 'wrong_shape', 'value_error'])
def test_start_up_check_runs_the_model_once(model_path, backend):
    """load_pipeline's check: a model that fails or computes another size on a test frame is a ModelFileError
    (the node exits 2 with one line) instead of a fault on every frame; any exception type counts."""
    with pytest.raises(ModelFileError, match='test frame|when run'):
        check_model_runs(backend, read_model_info(model_path), model_path)


def test_ground_plane_scale_correction_converges_to_the_true_depth(tmp_path):
    """A model whose depth is 25 % too long on this camera sees a floor 1.0 m below the camera: with
    scale_correction 'ground_plane' the depth (and depth_std, the cloud) is corrected to the true floor, first
    to the measured factor at once, then, after the error changes, by at most scale_max_step per frame until
    it converges; a camera_height change restarts the estimator. Without a camera no factor is applied."""
    width, height, fy, cy = 128, 96, 100.0, 30.5
    path = build_synthetic_onnx(str(tmp_path / 'ground.onnx'), height, width, base=0.0, gain=10.0,
                                focal_length=fy, std_ratio=0.1)
    camera = CameraModel.from_k([fy, 0, 63.5, 0, fy, cy, 0, 0, 1], width, height)
    pipeline = _pipeline(path, scale_correction='ground_plane', camera_height=1.0)
    true_floor = ground_image(width, height, fy, cy, 1.0, gain=10.0)
    floor_rows = slice(50, height)  # depth 5.0 .. 1.5 m: inside the model range, quantisation < 1.3 %
    truth = np.broadcast_to((fy / (np.arange(height) - cy))[floor_rows, None], (height - 50, width))

    long_floor = ground_image(width, height, fy, cy, 1.25, gain=10.0)
    result = pipeline.process(long_floor, camera)
    assert result.ground.updated and result.ground.inlier_ratio > 0.5
    assert result.ground.factor == pytest.approx(0.8, rel=0.01) and result.scale == pytest.approx(0.8, rel=0.01)
    np.testing.assert_allclose(result.depth[floor_rows], truth, rtol=0.02)
    np.testing.assert_allclose(result.cloud.xyz()[25:, :, 2], result.depth[50::2, ::2])  # the corrected depth's
    red = long_floor[floor_rows, :, 0] / 255.0  # depth_std / depth = std_ratio * red: also corrected
    np.testing.assert_allclose(result.depth_std[floor_rows], 0.1 * red * result.depth[floor_rows], rtol=1e-4)

    factors = [pipeline.process(true_floor, camera).ground.factor for _ in range(25)]  # the error is gone
    steps = np.diff([result.ground.factor] + factors) / ([result.ground.factor] + factors[:-1])
    assert steps.max() <= 0.05 + 1e-9 and factors[0] < 0.85  # bounded per frame
    assert factors[-1] == pytest.approx(1.0, rel=0.01)
    np.testing.assert_allclose(pipeline.process(true_floor, camera).depth[floor_rows], truth, rtol=0.02)

    pipeline.params = pipeline.params.replace(camera_height=0.5)  # restarted: the first frame sets the factor
    assert pipeline.process(true_floor, camera).ground.factor == pytest.approx(0.5, rel=0.01)
    assert pipeline.process(true_floor).ground is None


def test_ground_plane_needs_camera_height():
    with pytest.raises(ParameterError, match='^camera_height: .*ground_plane'):
        NodeParams(scale_correction='ground_plane')
