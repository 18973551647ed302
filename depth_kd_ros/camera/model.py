"""The pinhole camera of a frame: intrinsics in pixels from sensor_msgs/CameraInfo (REP 104).

Source: image_geometry's PinholeCameraModel (vision_opencv), which depth_image_proc and rviz use: a rectified
image's intrinsics are P's fx, fy, cx, cy; K's when P is unset (drivers that fill only K).

    K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]   pixels, at width x height
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class CameraInfoError(ValueError):
    """Camera intrinsics unusable (NaN/zero/negative focal, zero size, size differs from the image).

    ``kind`` is a short stable key for diagnostics counters.
    """

    def __init__(self, message: str, kind: str = 'bad_camera_info'):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics in pixels at width x height (sensor_msgs/CameraInfo K, REP 104)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_k(cls, k, width: int, height: int) -> CameraModel:
        """From a row-major 3x3 K (9 numbers) and the image size.

        Raises:
            CameraInfoError: K not 9 numbers, focal not finite and positive, principal point not
                finite, or zero size.
        """
        values = [float(x) for x in k]
        if len(values) != 9:
            raise CameraInfoError(f'K must have 9 elements, got {len(values)}', 'bad_k')
        fx, cx, fy, cy = values[0], values[2], values[4], values[5]
        if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0):
            raise CameraInfoError(f'focal length must be finite and positive, got fx={fx} fy={fy}',
                                  'bad_focal')
        if not (math.isfinite(cx) and math.isfinite(cy)):
            raise CameraInfoError(f'principal point must be finite, got cx={cx} cy={cy}', 'bad_focal')
        if width <= 0 or height <= 0:
            raise CameraInfoError(f'camera_info size {width}x{height} must be positive', 'bad_camera_size')
        return cls(fx, fy, cx, cy, int(width), int(height))

    @classmethod
    def from_camera_info(cls, k, p, width: int, height: int) -> CameraModel:
        """Intrinsics of a rectified image from sensor_msgs/CameraInfo: P's fx, fy, cx, cy (REP 104; what
        image_geometry's PinholeCameraModel, and so depth_image_proc and rviz, use), or K's when P is unset
        (all zeros: drivers that fill only K). K describes the raw, distorted image and differs from P
        whenever rectification changes the camera matrix (distorted lenses, alpha < 1, stereo).

        Raises:
            CameraInfoError: as ``from_k``, or P not 12 numbers.
        """
        values = [float(x) for x in p]
        if len(values) != 12:
            raise CameraInfoError(f'P must have 12 elements, got {len(values)}', 'bad_p')
        if not any(values):
            return cls.from_k(k, width, height)
        return cls.from_k([values[0], 0.0, values[2], 0.0, values[5], values[6], 0.0, 0.0, 1.0], width, height)

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the camera matrix's name in REP 104 and OpenCV
        """float64 [3,3] camera matrix, pixels: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def check_size(self, width: int, height: int) -> None:
        """Check that the camera describes an image of width x height pixels.

        Raises:
            CameraInfoError: kind 'camera_size_mismatch', the sizes differ.
        """
        if (width, height) != (self.width, self.height):
            raise CameraInfoError(f'camera_info is {self.width}x{self.height} but the image is '
                                  f'{width}x{height}', 'camera_size_mismatch')

    def focal_at(self, width: int, height: int) -> float:
        """Focal length in pixels after resizing the image to width x height: sqrt(fx*sx * fy*sy)."""
        return math.sqrt(self.fx * width / self.width * self.fy * height / self.height)


def camera_model(camera_info, width: int, height: int) -> CameraModel:
    """The intrinsics of a sensor_msgs/CameraInfo (either library) or a camera.calibration.Calibration for an image
    of width x height pixels.

    Raises:
        CameraInfoError: unusable K/P or size, or a camera_info of another size than the image (its ``kind`` says
            which, for diagnostics).
    """
    camera = CameraModel.from_camera_info(camera_info.k, camera_info.p, camera_info.width, camera_info.height)
    camera.check_size(width, height)
    return camera
