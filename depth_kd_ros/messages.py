"""Fill sensor_msgs fields on any message object: rclpy's classes (node) or rosbags' (offline tool).

Depth is published per REP 118 (depth images: 32FC1, metres) and REP 103/104 (optical frame, CameraInfo). Only plain
attributes are set, so one helper per message kind serves both libraries; ``uint8[]`` data is the array's own
bytes, not a copy (rosbags: a numpy uint8 view; rclpy: the view in the field's slot, _set_bytes says why), and
float64[] arrays get the container the object already holds (rclpy: array('d'); rosbags: numpy). Headers are not
touched: the caller copies the input header (the output header is the input header).
"""
from __future__ import annotations

import array
import sys

import numpy as np

from depth_kd_ros.camera.pointcloud import PackedCloud

IMAGE_ENCODINGS = {('float32', 1): '32FC1', ('uint8', 3): 'bgr8', ('uint8', 1): 'mono8',
                   ('uint16', 1): '16UC1'}
IS_BIGENDIAN = int(sys.byteorder == 'big')


def _set_bytes(msg, data: np.ndarray) -> None:
    """Set the uint8[] ``msg.data`` to ``data``'s bytes (any contiguous array), copying nothing in Python.

    rosbags' classes hold numpy arrays: the flat uint8 view is set as it is. rclpy's generated classes
    (rosidl_generator_py) would copy in their ``data`` setter (Jazzy: ``array.array('B', value)`` on every set;
    Humble: keeps an array.array, checks every byte of anything else), and our array.array would be a copy too,
    while their C conversion at publish (and serialize_message) takes any buffer, one memcpy into the C message
    (``PyObject_CheckBuffer`` in ``*_s.c``). So the view goes into the field's slot (``_data``, rosidl_generator_py's
    layout) directly: two copies fewer per 640x480 depth, preview and cloud (bench_node's message_fill 0.6 -> 0.2 ms).
    Other objects (plain namespaces in tests) get an array.array, one copy.
    """
    flat = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(msg.data, np.ndarray):
        msg.data = flat
    elif isinstance(getattr(type(msg), 'data', None), property) and '_data' in getattr(type(msg), '__slots__', ()):
        msg._data = flat
    else:
        out = array.array('B')
        out.frombytes(flat)
        msg.data = out


def _floats_like(current, values) -> object:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if isinstance(current, np.ndarray):
        return values
    return array.array('d', values.tolist()) if isinstance(current, array.array) else values.tolist()


def fill_image(msg, image: np.ndarray, encoding: str | None = None):
    """Set height, width, encoding, is_bigendian, step, data of a sensor_msgs/Image; returns ``msg``.

    Args:
        image: float32 [H,W] (32FC1, metres), uint8 [H,W,3] (bgr8), uint8 [H,W] (mono8), uint16 [H,W] (16UC1).
        encoding: override the encoding inferred from dtype and channels.
    Raises:
        ValueError: an array layout without a known encoding.
    """
    channels = image.shape[2] if image.ndim == 3 else 1
    key = (image.dtype.name, channels)
    if encoding is None and key not in IMAGE_ENCODINGS:
        raise ValueError(f'no image encoding for dtype {image.dtype} with {channels} channels')
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding or IMAGE_ENCODINGS[key]
    msg.is_bigendian = IS_BIGENDIAN
    msg.step = int(image.shape[1] * channels * image.dtype.itemsize)
    _set_bytes(msg, image)
    return msg


def fill_camera_info(msg, camera, distortion_model: str = 'plumb_bob',
                                     d=(0.0, 0.0, 0.0, 0.0, 0.0)):
    """Set width, height, K, R (identity), P, D of a sensor_msgs/CameraInfo from a CameraModel; returns msg."""
    k = camera.K
    p = np.hstack([k, np.zeros((3, 1))])  # a rectified camera: P = [K | 0]
    msg.width, msg.height = int(camera.width), int(camera.height)
    msg.distortion_model = distortion_model
    msg.d = _floats_like(msg.d, d)
    msg.k = _floats_like(msg.k, k)
    msg.r = _floats_like(msg.r, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    msg.p = _floats_like(msg.p, p)
    return msg


def fill_calibration(msg, calibration):
    """Set width, height, distortion_model, D, K, R, P of a sensor_msgs/CameraInfo from a camera.calibration.Calibration
    (e.g. ``rectified_calibration``'s); binning and roi are left as they are. Returns ``msg``."""
    msg.width, msg.height = int(calibration.width), int(calibration.height)
    msg.distortion_model = calibration.distortion_model
    for name in ('d', 'k', 'r', 'p'):
        setattr(msg, name, _floats_like(getattr(msg, name), getattr(calibration, name)))
    return msg


CAMERA_INFO_FIELDS = ('height', 'width', 'distortion_model', 'd', 'k', 'r', 'p', 'binning_x', 'binning_y', 'roi')


def copy_camera_info(msg, source):
    """Copy every CameraInfo field but the header from ``source`` (same message library); returns ``msg``."""
    for name in CAMERA_INFO_FIELDS:
        setattr(msg, name, getattr(source, name))
    return msg


def fill_pointcloud2(msg, cloud: PackedCloud, point_field_factory):
    """Set height, width, fields, is_bigendian, point_step, row_step, data, is_dense of a PointCloud2.

    Args:
        cloud: pointcloud.build_cloud output (float32 fields in host byte order).
        point_field_factory: callable(name=, offset=, datatype=, count=) -> a PointField of the
            caller's message library (e.g. ``sensor_msgs.msg.PointField``).
    Returns:
        ``msg``.
    """
    msg.height, msg.width = cloud.height, cloud.width
    msg.fields = [point_field_factory(name=name, offset=offset, datatype=datatype, count=count)
                  for name, offset, datatype, count in cloud.fields]
    msg.is_bigendian = bool(IS_BIGENDIAN)
    msg.point_step, msg.row_step = cloud.point_step, cloud.row_step
    _set_bytes(msg, cloud.data)
    msg.is_dense = cloud.is_dense
    return msg
