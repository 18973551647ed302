"""Metric scale from the ground plane: depth x camera_height / (distance of the fitted ground plane).

Paper: DisDepth (arXiv 2404.16386) students predict metric depth for the camera and scenes they were trained
on; on another lens or scene type the prediction can be off by a factor s (z_pred = s * z_true). A wheeled
robot knows its camera's height h above a flat floor, and the predicted floor points lie on a plane at
distance s * h from the camera, so
    factor = h / d_fit,   z_corrected = factor * z_pred
is right on the ground and, for a global scale error, everywhere else. Monocular visual odometry recovers its
scale the same way (Kitt, Rehder, Chambers et al., "Monocular visual odometry using a planar road model to
solve scale ambiguity", ECMR 2011; Song and Chandraker, "Robust scale estimation in real-time monocular SFM
for autonomous driving", CVPR 2014).

Per frame, in the optical frame (REP 103: x right, y down, z forward):
1. Samples: every ``stride``-th pixel of the rows below the principal point (v > cy: below the horizon of a
   level or downward-pitched camera) with valid depth, back-projected p = z ((u - cx) / fx, (v - cy) / fy, 1).
2. RANSAC (``iterations`` planes through 3 samples, numpy Generator seeded once: a frame sequence gives the
   same factors every run): planes n.p + d = 0 with |n| = 1 and n pointing up (n_y < 0), the camera above them
   (d > 0) and n within ``max_tilt_deg`` of the camera's up axis (-y), which rejects walls and obstacle faces.
   A sample is an inlier when |n.p + d| < ``inlier_tolerance`` * d: scaling a ground point by (1 + e) moves it
   e * d off the plane whatever its distance, so the tolerance is a relative depth error. Most inliers wins.
3. The winner is refitted to its inliers by least squares (the covariance's least eigenvector), inliers
   re-selected around each refit (REFIT_ROUNDS); the last plane's d is d_fit.
4. Accepted when the inlier ratio (refined plane's inliers / samples) >= ``min_inlier_ratio`` and h / d_fit
   lies in ``factor_range``; otherwise the factor is kept and ``reason`` says why.
5. Smoothing in log space, an EMA bounded per frame:
       log f <- log f + clip(smoothing * (log m - log f), -log(1 + max_step), log(1 + max_step))
   with m = h / d_fit; the first accepted frame sets f = m (there is nothing to smooth against).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: why a frame left the factor unchanged (stable keys for diagnostics)
NO_GROUND_POINTS = 'no_ground_points'
NO_GROUND_PLANE = 'no_ground_plane'
LOW_INLIER_RATIO = 'low_inlier_ratio'
IMPLAUSIBLE_SCALE = 'implausible_scale'
#: least-squares refits of the winner (inliers re-selected around each refit, LO-RANSAC's local optimisation):
#: on synthetic floors with 2 % depth noise one refit left up to 3 % scale error where a wall filled half the
#: view (its points near the floor join the inliers); three leave <= 0.4 %, more drift when noise ~ tolerance
REFIT_ROUNDS = 3


@dataclass(frozen=True)
class GroundFit:
    """A ground plane n.p + d = 0 fitted to the samples of one frame (units of the depth, usually metres)."""

    normal: tuple[float, float, float]  # unit, pointing up (n_y < 0 in the optical frame)
    distance: float  # d: the camera centre's height above the plane
    inlier_ratio: float  # inliers / samples
    samples: int  # valid samples below the horizon


@dataclass(frozen=True)
class ScaleUpdate:
    """What one frame did to the scale factor."""

    factor: float  # the factor to multiply this frame's depth with (after the update)
    measured: float | None  # camera_height / d_fit of this frame; None without a ground plane
    inlier_ratio: float  # of this frame's ground plane (0.0 without one)
    updated: bool
    reason: str  # '' when updated, else one of NO_GROUND_POINTS, NO_GROUND_PLANE, LOW_INLIER_RATIO, IMPLAUSIBLE_SCALE


def ground_samples(depth: np.ndarray, camera, stride: int) -> np.ndarray:
    """float64 [N,3] optical-frame points of every ``stride``-th pixel below the principal point row with finite,
    positive depth.

    Args:
        depth: float32 [H,W] (NaN invalid); camera: intrinsics at H x W (fx, fy, cx, cy; camera.model.CameraModel).
    """
    height, width = depth.shape
    first_row = max(int(math.floor(camera.cy)) + 1, 0)
    rows = np.arange(first_row, height, stride)
    cols = np.arange(stride // 2, width, stride)
    z = depth[np.ix_(rows, cols)].astype(np.float64)
    v, u = np.meshgrid(rows.astype(np.float64), cols.astype(np.float64), indexing='ij')
    valid = np.isfinite(z) & (z > 0)
    z = z[valid]
    return np.stack([(u[valid] - camera.cx) / camera.fx * z, (v[valid] - camera.cy) / camera.fy * z, z], axis=1)


def _oriented(normals: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip planes (n, d) so that n points up (n_y <= 0); the plane is the same."""
    sign = np.where(normals[..., 1] > 0, -1.0, 1.0)
    return normals * sign[..., None], offsets * sign


def _distances(points: np.ndarray, normals: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """|n.p + d| of every point (rows) to every plane (columns): [N, I]. Elementwise on purpose: the same
    product as one (N,3)x(3,I) BLAS call costs 10-100x more when a threaded BLAS wakes its threads on a busy CPU."""
    return np.abs(points[:, 0:1] * normals[:, 0] + points[:, 1:2] * normals[:, 1] + points[:, 2:3] * normals[:, 2]
                  + offsets)


def _near_plane(points: np.ndarray, normal: np.ndarray, offset: float, tolerance: float) -> np.ndarray:
    """bool [N]: the points within tolerance * offset of the plane n.p + offset = 0 (the inliers)."""
    return _distances(points, normal[None], np.array([offset]))[:, 0] < tolerance * offset


def fit_ground_plane(points: np.ndarray, rng: np.random.Generator, *, iterations: int = 100,
                     inlier_tolerance: float = 0.05, max_tilt_deg: float = 30.0) -> GroundFit | None:
    """RANSAC + least-squares ground plane of optical-frame points (module docstring, steps 2-3).

    Args:
        points: float64 [N,3], N >= 3.
        rng: the random source of the plane hypotheses.
    Returns:
        The refined plane, or None when no hypothesis is an upward plane below the camera within the tilt.
    """
    min_up = math.cos(math.radians(max_tilt_deg))
    picks = rng.integers(0, len(points), size=(iterations, 3))
    a, b, c = points[picks[:, 0]], points[picks[:, 1]], points[picks[:, 2]]
    normals = np.cross(b - a, c - a)  # (I, 3)
    lengths = np.linalg.norm(normals, axis=1)
    usable = lengths > 1e-12
    normals = normals / np.where(usable, lengths, 1.0)[:, None]
    normals, offsets = _oriented(normals, -np.einsum('ij,ij->i', normals, a))
    usable &= (offsets > 0) & (-normals[:, 1] >= min_up)
    if not usable.any():
        return None
    normals, offsets = normals[usable], offsets[usable]
    # scoring every hypothesis: float32 halves the memory traffic of this, the costliest step (1 vs 3 ms at 640x480)
    residuals = _distances(points.astype(np.float32), normals.astype(np.float32), offsets.astype(np.float32))
    counts = (residuals < (inlier_tolerance * offsets).astype(np.float32)).sum(axis=0)  # (I',)
    best = int(np.argmax(counts))
    normal, offset = normals[best], float(offsets[best])
    for _ in range(REFIT_ROUNDS):
        inliers = points[_near_plane(points, normal, offset, inlier_tolerance)]
        if len(inliers) < 3:
            break
        centroid = inliers.mean(axis=0)
        centred = inliers - centroid
        refined = np.linalg.eigh(np.einsum('ni,nj->ij', centred, centred))[1][:, 0]  # smallest eigenvalue's vector
        refined, refined_offset = _oriented(refined, -float(np.dot(refined, centroid)))
        if not (refined_offset > 0 and -refined[1] >= min_up):
            break
        normal, offset = refined, float(refined_offset)
    ratio = float(_near_plane(points, normal, offset, inlier_tolerance).mean())
    return GroundFit(tuple(float(x) for x in normal), offset, ratio, len(points))


class GroundPlaneScale:
    """The smoothed depth scale factor camera_height / d_fit over a frame sequence (module docstring).

    Args:
        camera_height: metres from the floor to the camera's optical centre (> 0).
        smoothing: EMA weight of a new measurement in log space (0 < smoothing <= 1).
        max_step: largest relative change of the factor per frame (0.05: 5 %).
        stride: sample every stride-th pixel (8 at 640x480: ~2400 samples below the horizon).
        iterations, inlier_tolerance, max_tilt_deg: RANSAC (fit_ground_plane).
        min_inlier_ratio: the least share of samples on the plane for an update.
        min_samples: the least valid samples below the horizon for a fit.
        factor_range: measured factors outside it are refused as implausible.
        seed: of the RANSAC generator (reset() restarts it).
    """

    def __init__(self, camera_height: float, *, smoothing: float = 0.2, max_step: float = 0.05, stride: int = 8,
                 iterations: int = 100, inlier_tolerance: float = 0.05, max_tilt_deg: float = 30.0,
                 min_inlier_ratio: float = 0.3, min_samples: int = 50, factor_range: tuple[float, float] = (0.2, 5.0),
                 seed: int = 0):
        if not (math.isfinite(camera_height) and camera_height > 0):
            raise ValueError(f'camera_height must be a positive number of metres, got {camera_height}')
        if not 0 < smoothing <= 1 or max_step <= 0 or stride < 1:
            raise ValueError(f'need 0 < smoothing <= 1, max_step > 0, stride >= 1; got {smoothing}, {max_step}, '
                             f'{stride}')
        self.camera_height = float(camera_height)
        self.smoothing, self.max_log_step = smoothing, math.log1p(max_step)
        self.stride, self.iterations = stride, iterations
        self.inlier_tolerance, self.max_tilt_deg = inlier_tolerance, max_tilt_deg
        self.min_inlier_ratio, self.min_samples = min_inlier_ratio, min_samples
        self.factor_range, self.seed = factor_range, seed
        self.reset()

    def reset(self) -> None:
        """Forget the factor (back to 1.0 until the next accepted frame) and restart the random generator."""
        self.factor = 1.0
        self.initialised = False
        self._rng = np.random.default_rng(self.seed)

    def update(self, depth: np.ndarray, camera) -> ScaleUpdate:
        """Fit this frame's ground plane and update the factor; ``depth`` is not modified.

        Args:
            depth: float32 [H,W] metres before this correction (NaN invalid).
            camera: intrinsics at H x W (camera.model.CameraModel).
        Returns:
            ScaleUpdate; multiply this frame's depth by its ``factor``.
        """
        points = ground_samples(depth, camera, self.stride)
        if len(points) < max(self.min_samples, 3):
            return self._kept(None, NO_GROUND_POINTS)
        fit = fit_ground_plane(points, self._rng, iterations=self.iterations,
                               inlier_tolerance=self.inlier_tolerance, max_tilt_deg=self.max_tilt_deg)
        if fit is None:
            return self._kept(None, NO_GROUND_PLANE)
        measured = self.camera_height / fit.distance
        if fit.inlier_ratio < self.min_inlier_ratio:
            return self._kept(fit, LOW_INLIER_RATIO, measured)
        if not self.factor_range[0] <= measured <= self.factor_range[1]:
            return self._kept(fit, IMPLAUSIBLE_SCALE, measured)
        if self.initialised:
            step = self.smoothing * (math.log(measured) - math.log(self.factor))
            self.factor *= math.exp(min(max(step, -self.max_log_step), self.max_log_step))
        else:
            self.factor, self.initialised = measured, True
        return ScaleUpdate(self.factor, measured, fit.inlier_ratio, True, '')

    def _kept(self, fit: GroundFit | None, reason: str, measured: float | None = None) -> ScaleUpdate:
        return ScaleUpdate(self.factor, measured, fit.inlier_ratio if fit else 0.0, False, reason)
