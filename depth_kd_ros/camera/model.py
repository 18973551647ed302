"""The pinhole camera of a frame: intrinsics in pixels from sensor_msgs/CameraInfo (REP 104).

Source: image_geometry's PinholeCameraModel.fromCameraInfo (vision_opencv), which depth_image_proc and rviz use: a
rectified image's intrinsics are P's fx, fy, cx, cy; K's when P is unset (drivers that fill only K). A camera
binned or cropped at the driver publishes the full sensor's calibration with ``binning_x/y`` and ``roi``, and its
images are the reduced ones (REP 104):

    K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]   pixels, at the reduced image's width x height
    binning 0 counts as 1; an all-zero roi is the full sensor (a zero roi width or height: to the sensor's edge)
    reduced:  fx' = fx / binning_x                cx' = (cx - roi.x_offset) / binning_x
              fy' = fy / binning_y                cy' = (cy - roi.y_offset) / binning_y
    size:     roi.width // binning_x  x  roi.height // binning_y

A camera_info whose focal length is zero or NaN is uncalibrated (kind 'uncalibrated'): camera drivers publish
K = P = 0 (some NaN) and an empty distortion model when no calibration file is given; image_proc tests K[0] == 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class CameraInfoError(ValueError):
    """Camera intrinsics unusable (uncalibrated, negative focal, zero size, roi beyond the sensor, size differs from
    the image).

    ``kind`` is a short stable key for diagnostics counters.
    """

    def __init__(self, message: str, kind: str = 'bad_camera_info'):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class RegionOfInterest:
    """sensor_msgs/RegionOfInterest: the window of the sensor an image shows, in full-sensor pixels (all zero: the
    full sensor)."""

    x_offset: int = 0
    y_offset: int = 0
    height: int = 0
    width: int = 0
    do_rectify: bool = False


@dataclass(frozen=True)
class Region:
    """The reduced image of a camera_info (REP 104): the sensor's size, the roi (normalised: an all-zero roi is the
    sensor, a zero width or height reaches its edge) and the binning (0 counts as 1)."""

    sensor_width: int
    sensor_height: int
    x_offset: int
    y_offset: int
    width: int
    height: int
    binning_x: int
    binning_y: int

    @classmethod
    def of(cls, info) -> Region:
        """From any object with CameraInfo's field names (width, height, binning_x, binning_y, roi)."""
        width, height, roi = int(info.width), int(info.height), info.roi
        x, y = int(roi.x_offset), int(roi.y_offset)
        return cls(width, height, x, y, int(roi.width) or width - x, int(roi.height) or height - y,
                   int(info.binning_x) or 1, int(info.binning_y) or 1)

    def check(self) -> None:
        """Raise CameraInfoError (kind 'bad_roi') when the roi reaches beyond the sensor."""
        if self.x_offset + self.width > self.sensor_width or self.y_offset + self.height > self.sensor_height \
                or min(self.x_offset, self.y_offset) < 0:
            raise CameraInfoError(f'camera_info {self.describe()} does not fit its {self.sensor_width}x'
                                  f'{self.sensor_height} sensor', 'bad_roi')

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the reduced image, pixels: the roi's divided by the binning (image_geometry's
        reducedResolution)."""
        return self.width // self.binning_x, self.height // self.binning_y

    @property
    def cropped(self) -> bool:
        """Whether the roi is less than the full sensor."""
        return (self.x_offset, self.y_offset, self.width, self.height) != (0, 0, self.sensor_width, self.sensor_height)

    @property
    def reduced(self) -> bool:
        """Whether the image differs from the full sensor (a roi or a binning)."""
        return self.cropped or (self.binning_x, self.binning_y) != (1, 1)

    def describe(self) -> str:
        """'roi 640x480 at (100, 50), binning 2x2': the parts that apply."""
        parts = [f'roi {self.width}x{self.height} at ({self.x_offset}, {self.y_offset})'] if self.cropped else []
        if (self.binning_x, self.binning_y) != (1, 1):
            parts.append(f'binning {self.binning_x}x{self.binning_y}')
        return ', '.join(parts) or 'no roi or binning'


def _intrinsics(k, p) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of P, or of K when P is all zero.

    Raises:
        CameraInfoError: K not 9 or P not 12 numbers ('bad_k', 'bad_p'), focal zero or NaN ('uncalibrated'),
            focal negative or infinite or principal point not finite ('bad_focal').
    """
    k_values, p_values = [float(x) for x in k], [float(x) for x in p]
    if len(k_values) != 9:
        raise CameraInfoError(f'K must have 9 elements, got {len(k_values)}', 'bad_k')
    if len(p_values) != 12:
        raise CameraInfoError(f'P must have 12 elements, got {len(p_values)}', 'bad_p')
    if any(p_values):
        fx, cx, fy, cy, source = p_values[0], p_values[2], p_values[5], p_values[6], 'P'
    else:
        fx, cx, fy, cy, source = k_values[0], k_values[2], k_values[4], k_values[5], 'K'
    if fx == 0 or fy == 0 or math.isnan(fx) or math.isnan(fy):
        raise CameraInfoError(f'the camera is uncalibrated: its camera_info has focal length fx={fx:g} fy={fy:g} '
                              f'in {source} (drivers publish K = P = 0 when no calibration file is given)',
                              'uncalibrated')
    if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0):
        raise CameraInfoError(f'focal length must be finite and positive, got fx={fx} fy={fy}', 'bad_focal')
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise CameraInfoError(f'principal point must be finite, got cx={cx} cy={cy}', 'bad_focal')
    return fx, fy, cx, cy


def _positive_size(width: int, height: int) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        raise CameraInfoError(f'camera_info size {width}x{height} must be positive', 'bad_camera_size')
    return int(width), int(height)


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
            CameraInfoError: K not 9 numbers, focal zero or NaN ('uncalibrated'), focal negative or infinite or
                principal point not finite ('bad_focal'), or zero size.
        """
        return cls(*_intrinsics(k, [0.0] * 12), *_positive_size(width, height))

    @classmethod
    def from_camera_info(cls, k, p, width: int, height: int, region: Region | None = None) -> CameraModel:
        """Intrinsics of a rectified image from sensor_msgs/CameraInfo: P's fx, fy, cx, cy (REP 104; what
        image_geometry's PinholeCameraModel, and so depth_image_proc and rviz, use), or K's when P is unset
        (all zeros: drivers that fill only K). K describes the raw, distorted image and differs from P
        whenever rectification changes the camera matrix (distorted lenses, alpha < 1, stereo). With ``region``
        (binning and roi, ``Region.of``) the camera of the reduced image, at its size (module docstring).

        Raises:
            CameraInfoError: as ``from_k``, or P not 12 numbers.
        """
        fx, fy, cx, cy = _intrinsics(k, p)
        if region is None:
            return cls(fx, fy, cx, cy, *_positive_size(width, height))
        region.check()
        bx, by = region.binning_x, region.binning_y
        return cls(fx / bx, fy / by, (cx - region.x_offset) / bx, (cy - region.y_offset) / by,
                   *_positive_size(*region.size))

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

    def principal_point_warning(self) -> str | None:
        """A warning when the principal point lies outside the image, else None. No lens puts its optical axis off
        the sensor: the calibration belongs to another size than the camera_info's binning and roi say (e.g. made
        on binned or cropped images but labelled with the full sensor)."""
        if 0 <= self.cx <= self.width and 0 <= self.cy <= self.height:
            return None
        return (f'the principal point ({self.cx:g}, {self.cy:g}) lies outside the {self.width}x{self.height} image: '
                'the calibration seems made for another image size than the camera_info\'s width, height, binning '
                'and roi say (e.g. on binned or cropped images but labelled with the full sensor); depth scale and '
                'points are then wrong')


def camera_model(camera_info, width: int, height: int) -> CameraModel:
    """The intrinsics of a sensor_msgs/CameraInfo (either library) or a camera.calibration.Calibration for an image
    of width x height pixels: the reduced image's when the camera_info has binning or a roi (module docstring).

    Raises:
        CameraInfoError: uncalibrated, unusable K/P, roi or size, or a camera_info that describes an image of
            another size (its ``kind`` says which, for diagnostics).
    """
    region = Region.of(camera_info)
    camera = CameraModel.from_camera_info(camera_info.k, camera_info.p, camera_info.width, camera_info.height,
                                          region)
    if (width, height) != (camera.width, camera.height):
        sensor = f'{camera_info.width}x{camera_info.height}'
        described = (f'{sensor} with {region.describe()}, so a {camera.width}x{camera.height} image,'
                     if region.reduced else sensor)
        raise CameraInfoError(f'camera_info is {described} but the image is {width}x{height}',
                              'camera_size_mismatch')
    return camera
