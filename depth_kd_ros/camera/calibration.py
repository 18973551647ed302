"""A camera's calibration: the fields of a sensor_msgs/CameraInfo, from a message or a ROS calibration file.

One type, ``Calibration``, for every source: an rclpy or rosbags CameraInfo, and the YAML files ROS
camera_calibration writes (camera_info_manager's format), which ``mono_depth_offline images`` and training
image folders read because image files carry no CameraInfo. A model predicts metric depth for its training
camera's focal length; the runtime rescales it to this camera (docs/design.md section 3). The file holds:

    image_width, image_height: int pixels
    camera_matrix:           {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}   (K, pixels)
    distortion_model:        str (plumb_bob, rational_polynomial, equidistant, ...)
    distortion_coefficients: {rows: 1, cols: N, data: [...]}                             (D)
    rectification_matrix:    {rows: 3, cols: 3, data: [...]}                             (R)
    projection_matrix:       {rows: 3, cols: 4, data: [...]}                             (P, pixels)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from depth_kd_ros.camera.model import CameraInfoError, CameraModel

REQUIRED_KEYS = ('image_width', 'image_height', 'camera_matrix', 'distortion_model',
                 'distortion_coefficients', 'rectification_matrix', 'projection_matrix')
#: matrix key -> (rows, cols); None: any count (distortion models differ in length)
MATRIX_SHAPES = {'camera_matrix': (3, 3), 'distortion_coefficients': (1, None),
                 'rectification_matrix': (3, 3), 'projection_matrix': (3, 4)}
#: distortion models (sensor_msgs/distortion_models.hpp names) -> number of coefficients in D
DISTORTION_MODELS: dict[str, int] = {'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4}
#: R of a camera that needs no rectifying rotation (row-major 3x3)
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


class CameraFileError(ValueError):
    """The calibration file is unreadable, lacks a key, or has a matrix of the wrong size."""


@dataclass(frozen=True)
class Calibration:
    """The calibration fields of a sensor_msgs/CameraInfo (REP 104); hashable, so equal calibrations share their
    rectification maps.

    Matrices are row-major tuples of floats as in sensor_msgs/CameraInfo: k (3x3), r (3x3), p (3x4), d (any
    length until ``check``); pixels at width x height.
    """

    width: int
    height: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]

    @classmethod
    def from_camera_info(cls, info) -> Calibration:
        """From any object with CameraInfo's field names: an rclpy or rosbags message, or a Calibration."""
        return cls(int(info.width), int(info.height), str(info.distortion_model),
                   tuple(float(x) for x in info.d), tuple(float(x) for x in info.k),
                   tuple(float(x) for x in info.r), tuple(float(x) for x in info.p))

    @property
    def distorted(self) -> bool:
        """Whether any distortion coefficient is non-zero (otherwise frames pass unchanged, as image_proc)."""
        return any(self.d)

    def check(self) -> None:
        """Raise CameraInfoError unless maps can be built (kinds: 'bad_k', 'bad_r', 'bad_p', 'bad_focal',
        'bad_camera_size', 'unknown_distortion_model', 'bad_distortion_length', 'bad_camera_info' for a
        non-finite number)."""
        for name, values, size in (('K', self.k, 9), ('R', self.r, 9), ('P', self.p, 12)):
            if len(values) != size:
                raise CameraInfoError(f'{name} must have {size} elements, got {len(values)}', f'bad_{name.lower()}')
        if not all(math.isfinite(x) for x in self.d + self.k + self.r + self.p):
            raise CameraInfoError('camera_info has a non-finite number in D, K, R or P', 'bad_camera_info')
        CameraModel.from_k(self.k, self.width, self.height)  # focal > 0 (image_proc: K[0] == 0 is uncalibrated)
        if not self.distorted:
            return
        expected = DISTORTION_MODELS.get(self.distortion_model)
        if expected is None:
            raise CameraInfoError(f'distortion_model {self.distortion_model!r} is unknown; rectification supports '
                                  f'{", ".join(DISTORTION_MODELS)}', 'unknown_distortion_model')
        if len(self.d) != expected:
            raise CameraInfoError(f'{self.distortion_model} needs {expected} distortion coefficients in D, got '
                                  f'{len(self.d)}', 'bad_distortion_length')

    def matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """K (3x3), D (1xN), R (3x3, identity when all zero), P (3x4, from K when all zero) as float64."""
        k = np.array(self.k).reshape(3, 3)
        r = np.array(self.r if any(self.r) else IDENTITY).reshape(3, 3)
        p = np.array(self.p).reshape(3, 4) if any(self.p) else np.hstack([k, np.zeros((3, 1))])
        return k, np.array(self.d).reshape(1, -1), r, p


def _matrix(path: Path, document: dict, key: str) -> tuple[float, ...]:
    rows, cols = MATRIX_SHAPES[key]
    value = document[key]
    if not isinstance(value, dict) or not {'rows', 'cols', 'data'} <= set(value):
        raise CameraFileError(f'camera file {path}: {key} needs rows, cols and data')
    try:
        data = np.asarray(value['data'], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise CameraFileError(f'camera file {path}: {key}.data is not a list of numbers') from exc
    if value['rows'] != rows or (cols is not None and value['cols'] != cols) \
            or data.size != value['rows'] * value['cols'] or not np.isfinite(data).all():
        expected = f'{rows}x{cols}' if cols is not None else f'{rows}xN'
        raise CameraFileError(f'camera file {path}: {key} must be {expected} with as many finite numbers, '
                              f'got {value["rows"]}x{value["cols"]} with {data.size} numbers')
    return tuple(float(x) for x in data)


def load_camera_yaml(path: str | Path) -> Calibration:
    """Read a ROS calibration YAML file.

    Returns:
        Calibration with K, D, R, P as flat tuples of floats.
    Raises:
        CameraFileError: unreadable or not a mapping, a key of ``REQUIRED_KEYS`` missing (named),
            a non-positive size, or a matrix of the wrong shape.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CameraFileError(f'camera file {path}: cannot read it: {str(exc).splitlines()[0]}') from exc
    if not isinstance(document, dict):
        raise CameraFileError(f'camera file {path}: expected a YAML mapping with {", ".join(REQUIRED_KEYS)}')
    missing = [key for key in REQUIRED_KEYS if key not in document]
    if missing:
        raise CameraFileError(f'camera file {path}: missing key {missing[0]!r} '
                              f'(a ROS calibration file has {", ".join(REQUIRED_KEYS)})')
    width, height = document['image_width'], document['image_height']
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise CameraFileError(f'camera file {path}: image_width and image_height must be positive integers, '
                              f'got {width!r} and {height!r}')
    matrices = {key: _matrix(path, document, key) for key in MATRIX_SHAPES}
    return Calibration(width, height, str(document['distortion_model']), d=matrices['distortion_coefficients'],
                       k=matrices['camera_matrix'], r=matrices['rectification_matrix'],
                       p=matrices['projection_matrix'])
