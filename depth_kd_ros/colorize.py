"""Depth preview: metric depth to a bgr8 image with a perceptual colormap over a fixed range.

The node's ``depth/colored`` topic, the offline tool's previews and evaluation's preview panels.
Formula: t = clip((z - z_min) / (z_max - z_min), 0, 1); colour = colormap(t) (255-entry table);
invalid z -> black.
A fixed range (not per-frame min/max) keeps colours comparable between frames.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

#: colormap name -> OpenCV colormap; the node's ``colormap`` parameter offers these
COLORMAPS = {
    'turbo': cv2.COLORMAP_TURBO,
    'viridis': cv2.COLORMAP_VIRIDIS,
    'inferno': cv2.COLORMAP_INFERNO,
    'magma': cv2.COLORMAP_MAGMA,
    'plasma': cv2.COLORMAP_PLASMA,
}


@functools.lru_cache(maxsize=len(COLORMAPS))
def _lut(colormap: str) -> np.ndarray:
    """int32 [256,1] table of 4-byte pixels, bytes B, G, R, 0 in memory: entry 0 is black (invalid), 1..255 the
    colormap resampled. One cv2.LUT into 4-byte pixels and a BGRA -> BGR copy take half the time of
    cv2.applyColorMap with a 3-channel table (which expands the index to 3 channels, then looks up each byte)."""
    ramp = np.linspace(0, 255, 255).astype(np.uint8)[:, None]
    table = np.zeros((256, 1, 4), np.uint8)
    table[1:, :, :3] = cv2.applyColorMap(ramp, COLORMAPS[colormap])
    return table.view(np.int32).reshape(256, 1)


def colorize(depth: np.ndarray, min_depth: float, max_depth: float, colormap: str = 'turbo',
             valid: np.ndarray | None = None) -> np.ndarray:
    """Colour a depth image (or any non-negative map over a fixed range, e.g. a relative error).

    Args:
        depth: float32 [H,W] metres; NaN and <= 0 are invalid (drawn black), +inf saturates.
        min_depth, max_depth: metres mapped to the colormap's ends (near = start).
        colormap: key of ``COLORMAPS``.
        valid: bool [H,W] pixels to colour, instead of ``depth > 0`` (others black), so a zero can be a value.
    Returns:
        uint8 [H,W,3] BGR (sensor_msgs encoding bgr8).
    Raises:
        ValueError: unknown colormap or max_depth <= min_depth.
    """
    if colormap not in COLORMAPS:
        raise ValueError(f'unknown colormap {colormap!r}; valid: {sorted(COLORMAPS)}')
    if not max_depth > min_depth:
        raise ValueError(f'max_depth {max_depth} must exceed min_depth {min_depth}')
    # index 1..255 over the range, 0 reserved for invalid pixels: one table lookup colours everything
    alpha = 254.0 / (max_depth - min_depth)
    index = np.multiply(depth, np.float32(alpha), dtype=np.float32)
    index += np.float32(1.0 - min_depth * alpha)
    np.clip(index, 1.0, 255.0, out=index)
    if valid is None:
        with np.errstate(invalid='ignore'):
            valid = depth > 0  # NaN compares False: invalid as well
    if not valid.all():  # the node's depth is mostly all valid: no masked write then
        index[~valid] = 0.0
    bgr0 = cv2.LUT(index.astype(np.uint8), _lut(colormap))  # int32 [H,W]: B, G, R, 0 bytes per pixel
    return cv2.cvtColor(bgr0.view(np.uint8).reshape(depth.shape + (4,)), cv2.COLOR_BGRA2BGR)
