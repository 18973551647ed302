"""Undistort and rectify raw camera frames from their sensor_msgs/CameraInfo, as image_proc's rectify does.

Paper: DisDepth (arXiv 2404.16386) predicts depth for a pinhole image; a raw wide-angle frame is not one, and
back-projecting it with K alone puts edge points several percent off. Source: image_pipeline
image_proc/src/rectify.cpp and vision_opencv image_geometry PinholeCameraModel (ROS 2):

    maps (once per calibration):  cv::initUndistortRectifyMap(K, D, R, P, (width, height), CV_16SC2)
                                  plumb_bob, rational_polynomial; cv::fisheye::initUndistortRectifyMap for
                                  equidistant (same arguments)
    each frame:                   cv::remap(raw, map1, map2, INTER_LINEAR), border constant 0
                                  (image_proc's ``interpolation`` default 1 = linear)
    D all zero or empty:          the frame passes unchanged (image_proc publishes it as it came)

Model (REP 104): for each rectified pixel (u, v), x = (P[:3,:3] R)^-1 [u v 1] is a ray of the raw camera; D
distorts it and K projects it to the raw pixel the map samples. So the rectified image is a pinhole image of
intrinsics P[:3,:3] (``rectified_calibration``: D zero, K from P):
    plumb_bob            D = (k1, k2, p1, p2, k3)                 r' = 1 + k1 r^2 + k2 r^4 + k3 r^6
    rational_polynomial  D = (k1, k2, p1, p2, k3, k4, k5, k6)     r' = (1 + k1 r^2 + k2 r^4 + k3 r^6) /
                                                                       (1 + k4 r^2 + k5 r^4 + k6 r^6)
    equidistant          D = (k1, k2, k3, k4)                     theta_d = theta (1 + k1 theta^2 + ... + k4 theta^8)
with r^2 = x^2 + y^2 of the normalised ray (p1, p2: tangential terms) and theta = atan(r).

Decisions beyond image_proc: an all-zero R (a driver that fills only K and D) is the identity, and an all-zero
P is K (as camera.model.CameraModel.from_camera_info); image_geometry would build maps from the zeros. binning_x/y
and roi (REP 104's reduced images) are not applied: the frame must have the calibration's full width x height
(camera_size_mismatch otherwise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from depth_kd_ros.camera.model import CameraInfoError, CameraModel

#: distortion models (sensor_msgs/distortion_models.hpp names) -> number of coefficients in D
DISTORTION_MODELS: dict[str, int] = {'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4}
#: image_proc rectify's default ``interpolation`` (1 = cv::INTER_LINEAR)
INTERPOLATION = cv2.INTER_LINEAR
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Calibration:
    """The CameraInfo fields rectification depends on; hashable, so equal calibrations share their maps.

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
        """From any object with CameraInfo's field names: an rclpy or rosbags message, a
        camera_yaml.CameraCalibration, or a Calibration."""
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


def rectified_calibration(calibration: Calibration) -> Calibration:
    """The calibration of the rectified frame, for depth/camera_info: plumb_bob with D zero, K = P[:3,:3],
    R identity, P unchanged (K when unset). A consumer rectifying it again changes nothing."""
    p = calibration.matrices()[3]
    return replace(calibration, distortion_model='plumb_bob', d=(0.0,) * 5, k=tuple(p[:, :3].reshape(-1)),
                   r=IDENTITY, p=tuple(p.reshape(-1)))


def build_maps(calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps (CV_16SC2 fixed point + interpolation table) of a distorted calibration.

    Raises:
        CameraInfoError: ``Calibration.check`` fails.
    """
    calibration.check()
    k, d, r, p = calibration.matrices()
    size = (calibration.width, calibration.height)
    if calibration.distortion_model == 'equidistant':
        return cv2.fisheye.initUndistortRectifyMap(k, d, r, p, size, cv2.CV_16SC2)
    return cv2.initUndistortRectifyMap(k, d, r, p, size, cv2.CV_16SC2)


class Rectifier:
    """Rectifies frames with maps built once per calibration (image_geometry's cache, keyed by the values)."""

    def __init__(self) -> None:
        self._calibration: Calibration | None = None
        self._maps: tuple[np.ndarray, np.ndarray] | None = None
        self.maps_built = 0  # how often maps were built: once per calibration, not per frame

    def rectify(self, image: np.ndarray, info) -> np.ndarray:
        """The rectified frame.

        Args:
            image: [H,W] or [H,W,C] array of any dtype cv2.remap takes (uint8 RGB from image_codec).
            info: the frame's CameraInfo (any object with its field names, see Calibration.from_camera_info).
        Returns:
            An array of ``image``'s shape and dtype: ``image`` itself when D is all zero, else a new array
            (pixels whose ray falls outside the raw frame are 0).
        Raises:
            CameraInfoError: the calibration is unusable (Calibration.check) or is not image's size
                ('camera_size_mismatch').
        """
        calibration = Calibration.from_camera_info(info)
        camera_size = (calibration.width, calibration.height)
        if (image.shape[1], image.shape[0]) != camera_size:
            raise CameraInfoError(f'camera_info is {camera_size[0]}x{camera_size[1]} but the image is '
                                  f'{image.shape[1]}x{image.shape[0]}; rectification needs the full-size raw frame '
                                  '(binning and roi are not applied)', 'camera_size_mismatch')
        if not calibration.distorted:
            return image
        if calibration != self._calibration:
            self._maps = build_maps(calibration)
            self._calibration = calibration
            self.maps_built += 1
        return cv2.remap(image, *self._maps, INTERPOLATION)
