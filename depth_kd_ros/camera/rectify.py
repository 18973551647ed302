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

from dataclasses import replace

import cv2
import numpy as np

from depth_kd_ros.camera.calibration import IDENTITY, Calibration
from depth_kd_ros.camera.model import CameraInfoError

#: image_proc rectify's default ``interpolation`` (1 = cv::INTER_LINEAR)
INTERPOLATION = cv2.INTER_LINEAR


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
