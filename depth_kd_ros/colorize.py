"""Depth preview: metric depth to a bgr8 image with a perceptual colormap over a fixed range.

Paper: DisDepth (arXiv 2404.16386) figures show depth this way; this is the ``depth/colored`` topic.
Formula: t = clip((z - z_min) / (z_max - z_min), 0, 1); colour = colormap(255 * t); invalid z -> black.
A fixed range (not per-frame min/max) keeps colours comparable between frames.
"""
from __future__ import annotations

import cv2
import numpy as np

COLORMAPS = {
    'turbo': cv2.COLORMAP_TURBO,
    'viridis': cv2.COLORMAP_VIRIDIS,
    'inferno': cv2.COLORMAP_INFERNO,
    'magma': cv2.COLORMAP_MAGMA,
    'plasma': cv2.COLORMAP_PLASMA,
}


def colorize(depth: np.ndarray, min_depth: float, max_depth: float, colormap: str = 'turbo') -> np.ndarray:
    """Colour a depth image.

    Args:
        depth: float32 [H,W] metres; NaN, inf and <= 0 are invalid (drawn black).
        min_depth, max_depth: metres mapped to the colormap's ends (near = start).
        colormap: key of ``COLORMAPS``.
    Returns:
        uint8 [H,W,3] BGR (sensor_msgs encoding bgr8).
    Raises:
        ValueError: unknown colormap or max_depth <= min_depth.
    """
    if colormap not in COLORMAPS:
        raise ValueError(f'unknown colormap {colormap!r}; valid: {sorted(COLORMAPS)}')
    if not max_depth > min_depth:
        raise ValueError(f'max_depth {max_depth} must exceed min_depth {min_depth}')
    scale = 255.0 / (max_depth - min_depth)
    scaled = np.nan_to_num(depth, nan=min_depth, posinf=max_depth, neginf=min_depth).astype(np.float32)
    scaled -= min_depth
    scaled *= scale
    index = np.clip(scaled, 0.0, 255.0, out=scaled).astype(np.uint8)
    colored = cv2.applyColorMap(index, COLORMAPS[colormap])
    with np.errstate(invalid='ignore'):
        colored[~(np.isfinite(depth) & (depth > 0))] = 0
    return colored
