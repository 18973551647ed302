"""Procedural solid textures and Lambertian shading for the synthetic RGB-D scenes.

Used by ``disdepth.data.synthetic`` (the embedded stand-in for KITTI/NYU, arXiv 2404.16386 section 4.1).
Textures are functions of the WORLD hit point, in metres, so their image-space frequency rises with
distance: the texture gradient is a monocular depth cue, as on real roads and floors.

    colour = albedo * pattern * (ambient + (1 - ambient) * max(0, n . l))       (l: towards the light)
    haze:    colour = mix(colour, horizon, 1 - exp(-t / fog_distance))          (aerial perspective)
    sky:     mix(horizon, top, sqrt(elevation of the ray))
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from disdepth.data.raycast import Hits, Scene, surface

PLAIN, CHECKER, STRIPES, WINDOWS, ROAD = range(5)
MARKING = 4.0  # pattern value of painted road markings (brighter than any albedo factor)


@dataclass
class Materials:
    """Material table: albedo [M,3] in 0..1, pattern id [M], pattern scale [M] (metres), contrast [M]."""

    albedo: list = field(default_factory=list)
    pattern: list = field(default_factory=list)
    scale: list = field(default_factory=list)
    contrast: list = field(default_factory=list)

    def add(self, albedo, pattern: int = PLAIN, scale: float = 1.0, contrast: float = 0.2) -> int:
        """Append a material; returns its id."""
        self.albedo.append(albedo)
        self.pattern.append(pattern)
        self.scale.append(scale)
        self.contrast.append(contrast)
        return len(self.albedo) - 1


def value_noise(p: np.ndarray, scale) -> np.ndarray:
    """Lattice hash noise in 0..1 at world points p [3,N] on cells of ``scale`` metres (scalar or [N])."""
    cell = np.floor(p / scale).astype(np.int64)
    h = (cell[0] * 73856093) ^ (cell[1] * 19349663) ^ (cell[2] * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h >> 7) & 0xFFFF).astype(np.float32) / 65535.0


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


def pattern(kind: int, p: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Pattern value (0..1, or MARKING) of ``kind`` at world points p [3,N], cell sizes ``scale`` [N] m."""
    q = p / scale
    if kind == CHECKER:
        return (np.floor(q).astype(np.int64).sum(0) & 1).astype(np.float32)
    if kind == STRIPES:  # horizontal bands: planks, brick courses
        return (np.floor(q[1] * 4) % 2).astype(np.float32)
    if kind == WINDOWS:  # facade grid, 0 = glass: one storey and one bay per cell
        storey, bay = _frac(q[1]), _frac(q[0] + q[2])
        return 1.0 - ((storey > 0.3) & (storey < 0.8) & (bay > 0.2) & (bay < 0.7)).astype(np.float32)
    if kind == ROAD:  # asphalt grain + dashed centre line at x = 0 (3 m dashes every 9 m)
        line = (np.abs(p[0]) < 0.07) & (_frac(p[2] / 9.0) < 1 / 3)
        return np.where(line, MARKING, value_noise(p, 0.3))
    return 0.6 * value_noise(p, scale) + 0.4 * value_noise(p, scale * 0.25)


def shade(hits: Hits, scene: Scene, materials: Materials, *, light: np.ndarray, ambient: float,
          sky_top: np.ndarray, sky_horizon: np.ndarray, fog_distance: float | None) -> np.ndarray:
    """Shade the visible surfaces of ``hits`` -> RGB float32 [H,W,3] in 0..1.

    ``light``: unit vector towards the light, world frame; ``ambient`` in 0..1; sky colours RGB 0..1;
    ``fog_distance`` in metres or None (no haze).
    """
    height, width = hits.t.shape
    image = np.empty((3, height * width), np.float32)  # channel-first: 1-D gathers/scatters are fast
    miss = np.flatnonzero(hits.prim.reshape(-1) < 0)
    if len(miss):
        ray = hits.ray.reshape(3, -1)[:, miss]
        elevation = np.sqrt(np.clip(-ray[1] / np.sqrt((ray * ray).sum(0)), 0, 1))
        for c in range(3):
            image[c, miss] = sky_horizon[c] + (sky_top[c] - sky_horizon[c]) * elevation
    idx, point, normal, mat = surface(hits, scene)
    kinds = np.asarray(materials.pattern)[mat]
    scale = np.asarray(materials.scale, np.float32)[mat]
    contrast = np.asarray(materials.contrast, np.float32)[mat]
    value = np.zeros(len(idx), np.float32)
    for kind in set(materials.pattern):
        sel = np.flatnonzero(kinds == kind)
        if len(sel):
            value[sel] = pattern(kind, point[:, sel], scale[sel])
    factor = np.where(value == MARKING, 2.5, 1.0 - contrast + contrast * value)
    lambert = np.clip(np.asarray(light, np.float32) @ normal, 0, 1)
    light_factor = factor * (ambient + (1 - ambient) * lambert)
    fog = 1 - np.exp(-hits.t.reshape(-1)[idx] / fog_distance) if fog_distance else None
    albedo = np.asarray(materials.albedo, np.float32)
    for c in range(3):
        colour = albedo[mat, c] * light_factor
        image[c, idx] = colour if fog is None else colour + (sky_horizon[c] - colour) * fog
    return np.clip(image, 0, 1).reshape(3, height, width).transpose(1, 2, 0)
