"""pointcloud: back-projection against an independent per-pixel loop, masks, packing and rgb."""
import struct
from types import SimpleNamespace

import numpy as np
import pytest

from depth_kd_ros.camera.pointcloud import build_cloud, is_optical_frame, pack_rgb, write_ply

CAMERA = SimpleNamespace(fx=40.0, fy=45.0, cx=13.3, cy=7.6)  # principal point deliberately off-centre


def _depth(height=12, width=18):
    return np.random.default_rng(1).uniform(0.5, 9.0, (height, width)).astype(np.float32)


@pytest.mark.parametrize('stride', [1, 3])
def test_backprojection_matches_pinhole_loop(stride):
    """x=(u-cx)z/fx, y=(v-cy)z/fy at every sampled pixel, computed independently with a plain loop."""
    depth = _depth()
    xyz = build_cloud(depth, CAMERA, stride=stride).xyz()
    for i, v in enumerate(range(0, depth.shape[0], stride)):
        for j, u in enumerate(range(0, depth.shape[1], stride)):
            z = float(depth[v, u])
            expected = ((u - CAMERA.cx) * z / CAMERA.fx, (v - CAMERA.cy) * z / CAMERA.fy, z)
            np.testing.assert_allclose(xyz[i, j], expected, rtol=1e-5)


def test_organized_cloud_marks_invalid_as_nan_and_not_dense():
    """Invalid depth and out-of-range points become NaN in an organised cloud with is_dense False."""
    depth = _depth()
    depth[0, 0], depth[1, 1], depth[2, 2] = np.nan, 0.0, -1.0
    depth[3, 3], depth[4, 4] = 0.2, 9.5  # below min_range / above max_range
    cloud = build_cloud(depth, CAMERA, min_range=0.4, max_range=9.2)
    assert (cloud.height, cloud.width, cloud.is_dense) == (12, 18, False)
    invalid = np.isnan(cloud.xyz()).all(axis=2)
    assert invalid.sum() == 5 and all(invalid[i, i] for i in range(5))


def test_unorganized_cloud_keeps_only_valid_points():
    """An unorganised cloud has height 1, only finite points, and is_dense True."""
    depth = _depth()
    depth[:, :4] = np.nan
    cloud = build_cloud(depth, CAMERA, organized=False)
    assert cloud.height == 1 and cloud.width == 12 * 14 and cloud.is_dense
    assert np.isfinite(cloud.xyz()).all()
    assert cloud.row_step == cloud.point_step * cloud.width == len(cloud.data)


def test_uncertainty_filter_drops_relative_std_above_threshold():
    """Points whose depth_std/depth exceeds the threshold are dropped; others kept."""
    depth = np.full((4, 4), 2.0, np.float32)
    std = np.full((4, 4), 0.1, np.float32)
    std[0, :] = 1.0  # 50 % relative uncertainty
    cloud = build_cloud(depth, CAMERA, depth_std=std, uncertainty_threshold=0.2)
    invalid = np.isnan(cloud.xyz()[..., 2])
    assert invalid[0].all() and not invalid[1:].any()
    assert (cloud.num_valid, cloud.num_uncertain) == (12, 4)


def test_cloud_counts_the_points_only_the_uncertainty_filter_removed():
    """num_valid and num_uncertain tell 'the threshold removed everything' (the node warns) from
    'nothing was in range' (a NaN or out-of-range point is not counted as uncertain)."""
    depth = np.full((4, 4), 2.0, np.float32)
    depth[0, 0], depth[0, 1] = np.nan, 50.0
    std = np.full((4, 4), 3.0, np.float32)
    cloud = build_cloud(depth, CAMERA, max_range=10.0, depth_std=std, uncertainty_threshold=0.5, organized=False)
    assert (cloud.num_valid, cloud.num_uncertain, cloud.width) == (0, 14, 0)
    assert build_cloud(depth, CAMERA, max_range=10.0).num_valid == 14


def test_rgb_field_uses_pcl_packing():
    """The rgb float32 field holds 0x00RRGGBB bits, as PCL and rviz read it."""
    depth = np.ones((2, 2), np.float32)
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 1] = (255, 128, 1)
    cloud = build_cloud(depth, CAMERA, rgb=rgb)
    assert [f[0] for f in cloud.fields] == ['x', 'y', 'z', 'rgb'] and cloud.point_step == 16
    point = bytes(cloud.data[16:32])
    assert struct.unpack('<I', point[12:16])[0] == 0xFF8001
    assert pack_rgb(rgb).view(np.uint32)[0, 1] == 0xFF8001


def test_bad_stride_and_shapes_raise():
    """A stride below 1 or mismatched auxiliary arrays are programming errors: ValueError."""
    with pytest.raises(ValueError, match='stride'):
        build_cloud(_depth(), CAMERA, stride=0)
    with pytest.raises(ValueError, match='rgb'):
        build_cloud(_depth(), CAMERA, rgb=np.zeros((3, 3, 3), np.uint8))


@pytest.mark.parametrize('points_rgb', [False, True])
def test_ply_holds_the_valid_points_and_their_colours(tmp_path, points_rgb):
    """write_ply(valid_points()) stores exactly the finite points (and their RGB) in binary little-endian PLY."""
    depth = np.full((4, 6), 2.0, np.float32)
    depth[1, 2] = np.nan
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    cloud = build_cloud(depth, SimpleNamespace(fx=5.0, fy=5.0, cx=3.0, cy=2.0), rgb=rgb if points_rgb else None)
    xyz, colours = cloud.valid_points()
    assert xyz.shape == (23, 3) and (colours is not None) == points_rgb
    write_ply(tmp_path / 'c.ply', xyz, colours)
    head, body = (tmp_path / 'c.ply').read_bytes().split(b'end_header\n')
    lines = head.decode('ascii').splitlines()
    assert lines[:3] == ['ply', 'format binary_little_endian 1.0', 'element vertex 23']
    assert ('property uchar red' in lines) == points_rgb
    fields = [('xyz', '<f4', 3)] + ([('rgb', 'u1', 3)] if points_rgb else [])
    vertex = np.frombuffer(body, dtype=fields)
    np.testing.assert_array_equal(vertex['xyz'], xyz)
    if points_rgb:
        np.testing.assert_array_equal(vertex['rgb'], np.delete(rgb.reshape(-1, 3), 1 * 6 + 2, axis=0))


@pytest.mark.parametrize(('frame_id', 'optical'), [
    ('camera_optical_frame', True), ('camera_color_optical_frame', True), ('camera_link_optical', True),
    ('/camera_rgb_optical_frame', True), ('robot1/head_camera_optical_frame', True), ('Camera_Optical_Frame', True),
    ('camera_link', False), ('camera', False), ('base_link', False), ('', False), ('optical_flow_link', False),
    ('camera_optical_frame/base_link', False),
])
def test_optical_frame_names_per_rep_103(frame_id, optical):
    """'_optical' (REP 103's suffix) and '_optical_frame' (the usual tf name) are optical frames; body frames,
    empty ids and names merely containing 'optical' are not."""
    assert is_optical_frame(frame_id) is optical
