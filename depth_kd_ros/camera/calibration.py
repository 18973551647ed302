"""Camera calibration files as written by ROS camera_calibration (camera_info_manager's YAML format).

A model predicts metric depth for its training camera's focal length; the runtime rescales it to this camera
(docs/design.md section 3), so the offline tool needs the intrinsics of a folder of images. The file holds a
sensor_msgs/CameraInfo:

    image_width, image_height: int pixels
    camera_matrix:           {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}   (K, pixels)
    distortion_model:        str (plumb_bob, rational_polynomial, equidistant, ...)
    distortion_coefficients: {rows: 1, cols: N, data: [...]}                             (D)
    rectification_matrix:    {rows: 3, cols: 3, data: [...]}                             (R)
    projection_matrix:       {rows: 3, cols: 4, data: [...]}                             (P, pixels)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

REQUIRED_KEYS = ('image_width', 'image_height', 'camera_matrix', 'distortion_model',
                 'distortion_coefficients', 'rectification_matrix', 'projection_matrix')
#: matrix key -> (rows, cols); None: any count (distortion models differ in length)
MATRIX_SHAPES = {'camera_matrix': (3, 3), 'distortion_coefficients': (1, None),
                 'rectification_matrix': (3, 3), 'projection_matrix': (3, 4)}


class CameraFileError(ValueError):
    """The calibration file is unreadable, lacks a key, or has a matrix of the wrong size."""


@dataclass(frozen=True)
class CameraCalibration:
    """The contents of a calibration file; matrices row-major float64 like sensor_msgs/CameraInfo."""

    width: int
    height: int
    k: np.ndarray  # [9] pixels
    distortion_model: str
    d: np.ndarray  # [N]
    r: np.ndarray  # [9]
    p: np.ndarray  # [12] pixels
    camera_name: str = ''


def _matrix(path: Path, document: dict, key: str) -> np.ndarray:
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
    return data


def load_camera_yaml(path: str | Path) -> CameraCalibration:
    """Read a ROS calibration YAML file.

    Returns:
        CameraCalibration with K, D, R, P as flat float64 arrays.
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
    return CameraCalibration(
        width=width, height=height, k=_matrix(path, document, 'camera_matrix'),
        distortion_model=str(document['distortion_model']),
        d=_matrix(path, document, 'distortion_coefficients'),
        r=_matrix(path, document, 'rectification_matrix'), p=_matrix(path, document, 'projection_matrix'),
        camera_name=str(document.get('camera_name', '')))
