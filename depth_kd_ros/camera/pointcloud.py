"""Back-projection of a metric depth image to a sensor_msgs/PointCloud2 payload (pinhole model).

Formula (pixel (u, v) of the rectified image, depth z in metres, fx, fy, cx, cy of CameraInfo's P, see
camera.model.CameraModel.from_camera_info), REP 103 optical frame (x right, y down, z forward), as
depth_image_proc's point_cloud_xyz does (image_geometry's cx, cy, not W/2):
    x = (u - cx) * z / fx,   y = (v - cy) * z / fy,   z = z
Invalid points (non-finite or non-positive z, z outside [min_range, max_range], relative uncertainty
depth_std / z above the threshold) are NaN in an organised cloud (is_dense=False) or dropped in an
unorganised one (height 1, is_dense=True). Colour follows the PCL convention: 0x00RRGGBB as uint32,
reinterpreted as one float32 field ``rgb``. ``write_ply`` stores the valid points as a PLY file.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32
#: REP 103 ("Suffix Frames"): a camera's optical frame has the suffix '_optical' (camera_link_optical in URDF
#: tutorials); '_optical_frame' is the usual tf name (realsense's camera_color_optical_frame)
OPTICAL_FRAME_SUFFIXES = ('_optical', '_optical_frame')


def is_optical_frame(frame_id: str) -> bool:
    """Whether ``frame_id`` looks like an optical frame (z forward, x right, y down), in which these points and the
    depth image are expressed: its last '/'-separated name ends with an OPTICAL_FRAME_SUFFIXES entry or is
    'optical' / 'optical_frame', in any case. Points published in a body frame (x forward, z up) show rotated by
    90 degrees in rviz and costmaps; an empty frame_id cannot be placed at all."""
    name = frame_id.strip().rsplit('/', 1)[-1].lower()
    return name in ('optical', 'optical_frame') or name.endswith(OPTICAL_FRAME_SUFFIXES)


@dataclass(frozen=True)
class PackedCloud:
    """A PointCloud2 payload independent of any message class (little-endian float32 fields)."""

    height: int
    width: int
    fields: tuple[tuple[str, int, int, int], ...]  # (name, byte offset, PointField datatype, count)
    point_step: int  # bytes per point
    row_step: int  # bytes per row = point_step * width
    data: np.ndarray  # uint8 [height * row_step]
    is_dense: bool
    num_valid: int  # points with a valid z (the others are NaN, or left out of an unorganised cloud)
    num_uncertain: int  # points that passed every other check but not the uncertainty threshold

    def xyz(self) -> np.ndarray:
        """float32 [height, width, 3] view of x, y, z (for tests and consumers)."""
        per_point = self.point_step // 4
        return self.data.view(np.float32).reshape(self.height, self.width, per_point)[..., :3]

    def valid_points(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The finite points: float32 [N,3] x, y, z metres and, with an ``rgb`` field, uint8 [N,3] RGB (else None)."""
        values = self.data.view(np.float32).reshape(-1, self.point_step // 4)
        keep = np.isfinite(values[:, :3]).all(axis=1)
        names = [name for name, *_ in self.fields]
        rgb = None
        if 'rgb' in names:
            packed = values[keep, names.index('rgb')].view(np.uint32)
            rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.uint8)
        return np.ascontiguousarray(values[keep, :3]), rgb


@functools.lru_cache(maxsize=8)
def ray_grid(intrinsics: tuple[float, float, float, float], shape: tuple[int, int],
             stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(u - cx) / fx and (v - cy) / fy at the sampled pixels, float32 [ceil(H/s), ceil(W/s)] each.

    ``intrinsics`` = (fx, fy, cx, cy) in pixels, ``shape`` = (H, W) of the full-resolution image.

    Cached: the camera rarely changes, and this is the costly part of back-projection.
    """
    fx, fy, cx, cy = intrinsics
    height, width = shape
    u = (np.arange(0, width, stride, dtype=np.float64) - cx) / fx
    v = (np.arange(0, height, stride, dtype=np.float64) - cy) / fy
    rx, ry = np.meshgrid(u.astype(np.float32), v.astype(np.float32))
    rx.setflags(write=False)
    ry.setflags(write=False)
    return rx, ry


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] RGB -> float32 [...] holding 0x00RRGGBB bits (PCL's packed rgb field)."""
    rgb = rgb.astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return packed.view(np.float32)


def build_cloud(depth: np.ndarray, camera, *, stride: int = 1, min_range: float = 0.0,
                max_range: float = 0.0, rgb: np.ndarray | None = None, depth_std: np.ndarray | None = None,
                uncertainty_threshold: float = 0.0, organized: bool = True) -> PackedCloud:
    """Back-project ``depth`` and pack it as a PointCloud2 payload.

    Args:
        depth: float32 [H,W] metres (NaN/0 = invalid), H and W equal to camera.height/width.
        camera: object with fx, fy, cx, cy (pixels at H x W), e.g. camera.model.CameraModel.
        stride: keep every stride-th pixel in u and v (u, v are the full-resolution pixel indices).
        min_range, max_range: keep min_range <= z <= max_range (metres; max_range 0 = no limit).
        rgb: optional uint8 [H,W,3] colours for a packed ``rgb`` field.
        depth_std: optional float32 [H,W] metres; with uncertainty_threshold > 0, points with
            depth_std / z > uncertainty_threshold are invalid.
        organized: NaN-filled [H/s, W/s] cloud (is_dense False) or only the valid points (height 1).
    Returns:
        PackedCloud with fields x, y, z (+ rgb), float32.
    Raises:
        ValueError: stride < 1 or array shapes that do not match.
    """
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    height, width = depth.shape
    for name, array in (('rgb', rgb), ('depth_std', depth_std)):
        if array is not None and array.shape[:2] != depth.shape:
            raise ValueError(f'{name} shape {array.shape[:2]} != depth shape {depth.shape}')
    intrinsics = (float(camera.fx), float(camera.fy), float(camera.cx), float(camera.cy))
    rx, ry = ray_grid(intrinsics, (height, width), stride)
    z = depth[::stride, ::stride]
    with np.errstate(invalid='ignore'):  # NaN compares False: invalid
        valid = (z >= min_range) if min_range > 0 else (z > 0)
        valid &= (z <= max_range) if 0 < max_range < np.inf else (z < np.inf)
        uncertain_points = 0
        if depth_std is not None and uncertainty_threshold > 0:
            certain = depth_std[::stride, ::stride] <= uncertainty_threshold * z
            uncertain_points = int(np.count_nonzero(valid & ~certain))
            valid &= certain
    n_fields = 4 if rgb is not None else 3
    points = np.empty(z.shape + (n_fields,), dtype=np.float32)
    np.multiply(rx, z, out=points[..., 0])
    np.multiply(ry, z, out=points[..., 1])
    points[..., 2] = z
    if rgb is not None:
        points[..., 3] = pack_rgb(rgb[::stride, ::stride])
    if organized:
        if not valid.all():  # the node's clouds are mostly all valid: no masked write then
            points[~valid, :3] = np.nan
        out_height, out_width, dense = z.shape[0], z.shape[1], False
    else:
        points = points[valid]
        out_height, out_width, dense = 1, points.shape[0], True
    names = ('x', 'y', 'z', 'rgb')[:n_fields]
    fields = tuple((name, 4 * i, FLOAT32, 1) for i, name in enumerate(names))
    point_step = 4 * n_fields
    data = np.ascontiguousarray(points).reshape(-1).view(np.uint8)
    return PackedCloud(out_height, out_width, fields, point_step, point_step * out_width, data, dense,
                       int(np.count_nonzero(valid)), uncertain_points)


def write_ply(path: str | Path, xyz: np.ndarray, rgb: np.ndarray | None = None) -> None:
    """Binary little-endian PLY of points (MeshLab, Open3D, CloudCompare and PCL read it).

    Args:
        xyz: float32 [N,3] metres (e.g. ``PackedCloud.valid_points``), in the optical frame (x right, y down,
            z forward).
        rgb: optional uint8 [N,3] colours, written as uchar red, green, blue.
    Raises:
        ValueError: ``rgb`` does not have one colour per point.
        OSError: the file cannot be written.
    """
    fields = [('xyz', '<f4', 3)]
    properties = 'property float x\nproperty float y\nproperty float z\n'
    if rgb is not None:
        if len(rgb) != len(xyz):
            raise ValueError(f'{len(rgb)} colours for {len(xyz)} points')
        fields.append(('rgb', 'u1', 3))
        properties += 'property uchar red\nproperty uchar green\nproperty uchar blue\n'
    vertex = np.empty(len(xyz), dtype=fields)
    vertex['xyz'] = xyz
    if rgb is not None:
        vertex['rgb'] = rgb
    header = f'ply\nformat binary_little_endian 1.0\nelement vertex {len(xyz)}\n{properties}end_header\n'
    with open(path, 'wb') as stream:
        stream.write(header.encode('ascii'))
        stream.write(vertex.tobytes())
