"""Geometric and photometric transforms that keep the camera intrinsics K exact.

Protocols of arXiv 2404.16386 section 4.1 (following BTS/AdaBins): KITTI KB crop 352x1216 and random
352x704 crops; NYU random 416x544 crops; random rotation, horizontal flip, gamma/brightness/colour.
Reference code: BTS ``bts_dataloader.py`` (``rotate_image``, ``random_crop``, ``augment_image``).

Every geometric op maps pixel centres (u, v) -> (u', v') and updates K (pixels, u right, v down):
    crop at (top, left):    cx' = cx - left, cy' = cy - top
    resize by (sx, sy):     fx' = sx fx, cx' = sx (cx + 0.5) - 0.5   (cv2's half-pixel-centre convention)
    horizontal flip:        cx' = W - 1 - cx  (the image of a mirrored world; fx unchanged)
    rotation about the image centre c by angle a (2x3 affine M):  (cx', cy') = M (cx, cy, 1)
The rotation is exact for square pixels (fx = fy): rotating the image about c equals rolling the
camera about its optical axis (z-depth unchanged) plus moving the principal point to M pp. For
fx != fy it is an approximation (a roll would scale the axes differently), as is the nearest-
neighbour resampling of depth. Rotations are small (<= 2.5 degrees), as in BTS.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import cv2
import numpy as np
import torch

KB_HEIGHT, KB_WIDTH = 352, 1216  # KITTI benchmark crop


@dataclass
class Sample:
    """image float32 [H,W,3] RGB 0..1; depth float32 [H,W] metres (0 = invalid); K float64 [3,3] pixels."""

    image: np.ndarray
    depth: np.ndarray
    K: np.ndarray


def crop(s: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """Crop a window of height x width pixels at (top, left).

    Raises:
        ValueError: the window does not fit inside the image.
    """
    h, w = s.depth.shape
    if top < 0 or left < 0 or top + height > h or left + width > w:
        raise ValueError(f'crop {height}x{width} at ({top}, {left}) does not fit a {h}x{w} image')
    K = s.K.copy()
    K[0, 2] -= left
    K[1, 2] -= top
    window = (slice(top, top + height), slice(left, left + width))
    return Sample(s.image[window], s.depth[window], K)


def kb_crop(s: Sample) -> Sample:
    """KITTI benchmark crop: the bottom 352 rows, the centred 1216 columns (as BTS/AdaBins)."""
    h, w = s.depth.shape
    return crop(s, h - KB_HEIGHT, (w - KB_WIDTH) // 2, KB_HEIGHT, KB_WIDTH)


def random_crop(rng: np.random.Generator, s: Sample, height: int, width: int,
                bounds: Optional[tuple[int, int, int, int]] = None) -> Sample:
    """Uniform random crop of height x width inside ``bounds`` (top, bottom, left, right; default: all)."""
    top, bottom, left, right = bounds or (0, s.depth.shape[0], 0, s.depth.shape[1])
    if bottom - top < height or right - left < width:
        raise ValueError(f'cannot crop {height}x{width} from a {bottom - top}x{right - left} region')
    return crop(s, int(rng.integers(top, bottom - height + 1)), int(rng.integers(left, right - width + 1)),
                height, width)


def hflip(s: Sample) -> Sample:
    K = s.K.copy()
    K[0, 2] = s.depth.shape[1] - 1 - K[0, 2]
    return Sample(np.ascontiguousarray(s.image[:, ::-1]), np.ascontiguousarray(s.depth[:, ::-1]), K)


def rotate(s: Sample, degrees: float) -> Sample:
    """Rotate counter-clockwise about the image centre; image bilinear, depth nearest, borders 0."""
    h, w = s.depth.shape
    M = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    image = cv2.warpAffine(s.image, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    depth = cv2.warpAffine(s.depth, M, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    K = s.K.copy()
    K[:2, 2] = M[:, :2] @ s.K[:2, 2] + M[:, 2]
    return Sample(image, depth, K)


def resize(s: Sample, height: int, width: int) -> Sample:
    """Resize image (area/bilinear) and depth (nearest, so no depth is invented across edges)."""
    h, w = s.depth.shape
    sx, sy = width / w, height / h
    interp = cv2.INTER_AREA if sx < 1 and sy < 1 else cv2.INTER_LINEAR
    image = cv2.resize(s.image, (width, height), interpolation=interp)
    depth = cv2.resize(s.depth, (width, height), interpolation=cv2.INTER_NEAREST)
    K = s.K.copy()
    K[0, 0], K[1, 1] = K[0, 0] * sx, K[1, 1] * sy
    K[0, 2], K[1, 2] = sx * (K[0, 2] + 0.5) - 0.5, sy * (K[1, 2] + 0.5) - 0.5
    return Sample(image, depth, K)


def photometric(rng: np.random.Generator, image: np.ndarray, brightness: tuple[float, float]) -> np.ndarray:
    """BTS colour augmentation: gamma U(0.9, 1.1), brightness U(brightness), per-channel U(0.9, 1.1)."""
    image = image ** rng.uniform(0.9, 1.1)
    image = image * rng.uniform(*brightness) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    return np.clip(image, 0, 1).astype(np.float32)


def augment(rng: np.random.Generator, s: Sample, *, max_rotation: float, brightness: tuple[float, float]) -> Sample:
    """Training augmentation: rotation U(-max, max) degrees, hflip p=0.5, photometric p=0.5 (BTS)."""
    if max_rotation > 0:
        s = rotate(s, float(rng.uniform(-max_rotation, max_rotation)))
    if rng.random() < 0.5:
        s = hflip(s)
    if rng.random() < 0.5:
        s = replace(s, image=photometric(rng, s.image, brightness))
    return s


def item_rng() -> np.random.Generator:
    """Per-item augmentation RNG drawn from torch's RNG, which DataLoader seeds differently per worker
    and epoch (numpy's global RNG would repeat the same augmentations in every worker)."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


def to_item(s: Sample, *, min_depth: float, max_depth: float, name: str,
            eval_region: Optional[tuple[int, int, int, int]] = None) -> dict:
    """Dataset item: image [3,H,W], depth [1,H,W] m, mask [1,H,W] (min_depth < depth <= max_depth, and
    inside ``eval_region`` = (top, bottom, left, right) if given), K [3,3], focal = K[0,0], name."""
    depth = s.depth.astype(np.float32)
    mask = (depth > min_depth) & (depth <= max_depth)
    if eval_region is not None:
        top, bottom, left, right = eval_region
        region = np.zeros_like(mask)
        region[max(top, 0):bottom, max(left, 0):right] = True
        mask &= region
    return dict(image=torch.from_numpy(np.ascontiguousarray(s.image.transpose(2, 0, 1), np.float32)),
                depth=torch.from_numpy(depth)[None], mask=torch.from_numpy(mask)[None],
                K=torch.from_numpy(s.K.astype(np.float32)), focal=float(s.K[0, 0]), name=name)
