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
    binning and roi (REP 104):    maps built for the binned full sensor (width / binning_x x height / binning_y)
                                  with K and P binned (fx, cx, Tx / binning_x; fy, cy, Ty / binning_y), then cut to
                                  the binned roi, map coordinates shifted by its offset (image_geometry's
                                  initRectificationMaps: full maps, then reduced maps)
    uncalibrated (focal 0, NaN):  refused, as image_proc refuses to rectify an uncalibrated camera

Model (REP 104): for each rectified pixel (u, v), x = (P[:3,:3] R)^-1 [u v 1] is a ray of the raw camera; D
distorts it and K projects it to the raw pixel the map samples. So the rectified image is a pinhole image of
intrinsics P[:3,:3] (``rectified_calibration``: D zero, K from P):
    plumb_bob            D = (k1, k2, p1, p2, k3)                 r' = 1 + k1 r^2 + k2 r^4 + k3 r^6
    rational_polynomial  D = (k1, k2, p1, p2, k3, k4, k5, k6)     r' = (1 + k1 r^2 + k2 r^4 + k3 r^6) /
                                                                       (1 + k4 r^2 + k5 r^4 + k6 r^6)
    equidistant          D = (k1, k2, k3, k4)                     theta_d = theta (1 + k1 theta^2 + ... + k4 theta^8)
with r^2 = x^2 + y^2 of the normalised ray (p1, p2: tangential terms) and theta = atan(r).

Decisions beyond image_proc: an all-zero R (a driver that fills only K and D) is the identity, and an all-zero
P is K (as camera.model.CameraModel.from_camera_info); image_geometry would build maps from the zeros. The frame
must be the size the calibration's binning and roi give (camera_size_mismatch otherwise); roi.do_rectify is not
read (the roi is the raw image's, as image_geometry's maps use it).
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from depth_kd_ros.camera.calibration import IDENTITY, Calibration
from depth_kd_ros.camera.model import Region, camera_model

#: image_proc rectify's default ``interpolation`` (1 = cv::INTER_LINEAR)
INTERPOLATION = cv2.INTER_LINEAR


def rectified_calibration(calibration: Calibration) -> Calibration:
    """The calibration of the rectified frame, for depth/camera_info: plumb_bob with D zero, K = P[:3,:3],
    R identity, P unchanged (K when unset). A consumer rectifying it again changes nothing."""
    p = calibration.matrices()[3]
    return replace(calibration, distortion_model='plumb_bob', d=(0.0,) * 5, k=tuple(p[:, :3].reshape(-1)),
                   r=IDENTITY, p=tuple(p.reshape(-1)))


def build_maps(calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps (CV_16SC2 fixed point + interpolation table) of a distorted calibration, for its reduced image
    (binning and roi, module docstring).

    Raises:
        CameraInfoError: ``Calibration.check`` fails.
    """
    calibration.check()
    k, d, r, p = calibration.matrices()
    region = Region.of(calibration)
    bx, by = region.binning_x, region.binning_y
    k[0, [0, 2]] /= bx
    k[1, [1, 2]] /= by
    p[0, [0, 2, 3]] /= bx
    p[1, [1, 2, 3]] /= by
    size = (calibration.width // bx, calibration.height // by)
    if calibration.distortion_model == 'equidistant':
        map1, map2 = cv2.fisheye.initUndistortRectifyMap(k, d, r, p, size, cv2.CV_16SC2)
    else:
        map1, map2 = cv2.initUndistortRectifyMap(k, d, r, p, size, cv2.CV_16SC2)
    x, y = region.x_offset // bx, region.y_offset // by
    width, height = region.size
    if (x, y, width, height) == (0, 0, *size):
        return map1, map2
    window = np.s_[y:y + height, x:x + width]
    return map1[window] - np.array([x, y], map1.dtype), np.ascontiguousarray(map2[window])


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
            CameraInfoError: the camera is uncalibrated ('uncalibrated'), the calibration is unusable
                (Calibration.check), or it describes another size than image's ('camera_size_mismatch').
        """
        calibration = Calibration.from_camera_info(info)
        camera_model(calibration, image.shape[1], image.shape[0])  # calibrated, of this size (binning, roi)
        if not calibration.distorted:
            return image
        if calibration != self._calibration:
            self._maps = build_maps(calibration)
            self._calibration = calibration
            self.maps_built += 1
        return cv2.remap(image, *self._maps, INTERPOLATION)
