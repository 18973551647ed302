"""The per-frame outputs are exactly what their formulas give (issue 16: the node's own work made faster, its
outputs' content unchanged): each reference below is the straightforward implementation the speed-ups replaced,
and the fast path must match it byte for byte (depth, cloud, preview), on edge values as well (NaN, +-inf, 0,
negative depths, ranges, strides, the uncertainty filter), and the 16UC1 depth likewise.
"""
import cv2
import numpy as np
import pytest

from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.camera.pointcloud import build_cloud
from depth_kd_ros.colorize import COLORMAPS, colorize
from depth_kd_ros.io.depth_encoding import depth_to_millimetres
from depth_kd_ros.params import NodeParams
from depth_kd_ros.pipeline import load_pipeline
from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx

HEIGHT, WIDTH = 120, 160
CAMERA = CameraModel(130.0, 125.0, 79.5, 61.0, WIDTH, HEIGHT)


def _edge_depth(seed: int = 0) -> np.ndarray:
    """float32 [H,W] metres, 0.05..14 m with NaN, +-inf, 0 and negative pixels sprinkled in."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.05, 14.0, (HEIGHT, WIDTH)).astype(np.float32)
    for value in (np.nan, np.inf, -np.inf, 0.0, -1.0):
        depth[rng.integers(0, HEIGHT, 60), rng.integers(0, WIDTH, 60)] = value
    return depth


def reference_colorize(depth, min_depth, max_depth, colormap, valid=None):
    ramp = np.linspace(0, 255, 255).astype(np.uint8)[:, None]
    table = np.zeros((256, 1, 3), np.uint8)
    table[1:] = cv2.applyColorMap(ramp, COLORMAPS[colormap])
    alpha = 254.0 / (max_depth - min_depth)
    index = np.multiply(depth, np.float32(alpha), dtype=np.float32)
    index += np.float32(1.0 - min_depth * alpha)
    np.clip(index, 1.0, 255.0, out=index)
    if valid is None:
        with np.errstate(invalid='ignore'):
            valid = depth > 0
    index[~valid] = 0.0
    return cv2.applyColorMap(index.astype(np.uint8), table)


def reference_cloud_points(depth, camera, *, stride, min_range, max_range, rgb, depth_std, threshold, organized):
    """float32 [N, 3 or 4] points as the formula says (pointcloud module docstring)."""
    u = ((np.arange(0, depth.shape[1], stride, dtype=np.float64) - camera.cx) / camera.fx).astype(np.float32)
    v = ((np.arange(0, depth.shape[0], stride, dtype=np.float64) - camera.cy) / camera.fy).astype(np.float32)
    rx, ry = np.meshgrid(u, v)
    z = depth[::stride, ::stride]
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(z) & (z > 0) & (z >= min_range)
        if max_range > 0:
            valid &= z <= max_range
        if depth_std is not None and threshold > 0:
            valid &= depth_std[::stride, ::stride] <= threshold * z
    columns = [rx * z, ry * z, z]
    if rgb is not None:
        c = rgb[::stride, ::stride].astype(np.uint32)
        columns.append(((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).view(np.float32))
    points = np.stack(columns, axis=-1).astype(np.float32)
    if organized:
        points[~valid, :3] = np.nan
        return points.reshape(-1, len(columns))
    return points[valid]


@pytest.mark.parametrize('colormap', sorted(COLORMAPS))
@pytest.mark.parametrize(('low', 'high'), [(0.1, 10.0), (2.0, 5.0)])
def test_preview_is_the_colormap_of_the_formula(colormap, low, high):
    depth = _edge_depth()
    np.testing.assert_array_equal(colorize(depth, low, high, colormap), reference_colorize(depth, low, high, colormap))
    finite = np.abs(np.nan_to_num(depth, nan=3.0, posinf=3.0, neginf=3.0)) + 0.1  # every pixel valid: no mask
    np.testing.assert_array_equal(colorize(finite, low, high, colormap), reference_colorize(finite, low, high,
                                                                                            colormap))
    zero_valid = np.isfinite(depth) & (depth >= 0)
    np.testing.assert_array_equal(colorize(depth, low, high, colormap, valid=zero_valid),
                                  reference_colorize(depth, low, high, colormap, valid=zero_valid))


@pytest.mark.parametrize('stride', [1, 2, 3])
@pytest.mark.parametrize('organized', [True, False])
@pytest.mark.parametrize(('min_range', 'max_range'), [(0.0, 0.0), (0.5, 10.0), (0.0, np.inf), (-1.0, 6.0)])
@pytest.mark.parametrize('with_rgb_and_std', [False, True])
def test_cloud_is_the_back_projection_of_the_formula(stride, organized, min_range, max_range, with_rgb_and_std):
    depth = _edge_depth(1)
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) if with_rgb_and_std else None
    depth_std = (np.abs(depth) * rng.uniform(0.0, 0.4, depth.shape)).astype(np.float32) if with_rgb_and_std else None
    threshold = 0.2 if with_rgb_and_std else 0.0
    cloud = build_cloud(depth, CAMERA, stride=stride, min_range=min_range, max_range=max_range, rgb=rgb,
                        depth_std=depth_std, uncertainty_threshold=threshold, organized=organized)
    expected = reference_cloud_points(depth, CAMERA, stride=stride, min_range=min_range, max_range=max_range,
                                      rgb=rgb, depth_std=depth_std, threshold=threshold, organized=organized)
    assert cloud.data.tobytes() == expected.tobytes()
    clean = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(2.0))  # every point valid: no mask
    cloud = build_cloud(clean, CAMERA, stride=stride, organized=organized)
    assert cloud.data.tobytes() == reference_cloud_points(clean, CAMERA, stride=stride, min_range=0.0, max_range=0.0,
                                                          rgb=None, depth_std=None, threshold=0.0,
                                                          organized=organized).tobytes()


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory):
    path = build_synthetic_onnx(str(tmp_path_factory.mktemp('m') / 'grey.onnx'), 48, 64, gain=3.0,
                                focal_length=40.0, std_ratio=0.3)
    return load_pipeline(NodeParams(model_path=path, num_threads=1))


def reference_depth(pipeline, rgb, scale, output, zero_valid=False):
    """Model input and depth as the pipeline module docstring says: area resize, /255, NCHW; bilinear back, scaled,
    invalid -> NaN."""
    info = pipeline.info
    small = cv2.resize(rgb, (info.input_width, info.input_height), interpolation=cv2.INTER_AREA)
    blob = (small.astype(np.float32) * np.float32(1.0 / 255.0)).transpose(2, 0, 1)[None]
    depth = cv2.resize(output[0, 0], (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    depth = depth * np.float32(scale)
    with np.errstate(invalid='ignore'):
        valid = ((depth >= 0) if zero_valid else (depth > 0)) & (depth < np.inf)
    depth[~valid] = np.nan
    return blob, depth


def test_model_input_and_depth_are_those_of_the_formula(pipeline):
    rgb = np.random.default_rng(3).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    result = pipeline.process(rgb, CAMERA, want_cloud=False)
    blob, _ = reference_depth(pipeline, rgb, result.scale, np.zeros((1, 1, 48, 64), np.float32))
    np.testing.assert_array_equal(pipeline.preprocess(rgb), blob)
    outputs = pipeline.backend.infer(blob)
    for name, zero_valid, got in (('depth', False, result.depth), ('depth_std', True, result.depth_std)):
        _, expected = reference_depth(pipeline, rgb, result.scale, outputs[name], zero_valid)
        assert got.tobytes() == expected.tobytes(), name
    # edge values straight from a model: NaN, +-inf, 0 and negative depths
    edge = _edge_depth(4)[:48, :64][None, None].copy()
    for zero_valid in (False, True):
        _, expected = reference_depth(pipeline, rgb, 1.7, edge, zero_valid)
        got = pipeline._postprocess(edge, WIDTH, HEIGHT, 1.7, zero_valid)
        assert got.tobytes() == expected.tobytes()


def test_depth_of_a_model_at_the_camera_size_is_a_scaled_copy(tmp_path):
    """No resize: the scaling must not write into the backend's output buffer (backends may reuse it)."""
    path = build_synthetic_onnx(str(tmp_path / 'full.onnx'), HEIGHT, WIDTH, focal_length=100.0)
    full = load_pipeline(NodeParams(model_path=path, num_threads=1))
    output = _edge_depth(5)[None, None].copy()
    before = output.copy()
    got = full._postprocess(output, WIDTH, HEIGHT, 2.0)
    assert got.tobytes() == reference_depth(full, np.zeros((HEIGHT, WIDTH, 3), np.uint8), 2.0, output)[1].tobytes()
    assert output.tobytes() == before.tobytes()


def test_16uc1_depth_is_the_rounded_millimetres_of_the_formula():
    """depth_encoding's formula: round(1000 z) where 0 < it <= 65535, else 0; on edge values and an all-valid frame."""
    depth = _edge_depth(6)
    depth[0, :4] = (65.5354, 65.5355, 0.0004, 0.0005)  # around the 16-bit limit and the 0 mm cut
    for frame in (depth, np.where(np.isfinite(depth) & (depth > 0.001), depth, np.float32(1.0))):
        millimetres = np.rint(frame.astype(np.float64) * 1000.0)
        with np.errstate(invalid='ignore'):
            expected = np.where((millimetres > 0) & (millimetres <= 65535), millimetres, 0).astype(np.uint16)
        assert depth_to_millimetres(frame).tobytes() == expected.tobytes()
