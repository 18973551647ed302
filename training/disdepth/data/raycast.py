"""Vectorised numpy ray casting of planes, axis-aligned boxes and vertical cylinders.

The renderer behind the embedded synthetic dataset (``disdepth.data.synthetic``); no game engine.
Paper: arXiv 2404.16386 trains on KITTI/NYU (section 4.1); this embedded stand-in gives exact metric
ground truth for the demo and CI, where neither dataset is available.

Frames: the world uses the camera's optical-frame convention (REP 103: x right, y down, z forward),
so "up" is -y and the ground of a camera at height h is the plane y = h. ``R`` maps camera to world.

Depth: each pixel's ray is r = R @ ((u - cx) / fx, (v - cy) / fy, 1) from the camera origin o. A hit at
X = o + t r has camera-frame coordinates t * ((u - cx) / fx, (v - cy) / fy, 1), so the ray parameter t
IS the z-depth along the optical axis (not the Euclidean range):
    plane n.X = d:              t = (d - n.o) / (n.r)
    box [lo, hi] (slab method): t = max_k min((lo_k - o_k) / r_k, (hi_k - o_k) / r_k), if <= the far t
    vertical cylinder:          smallest root of |(o + t r - c)_xz|^2 = radius^2 with y in [y0, y1]
Boxes and cylinders are tested only inside the screen-space bounding rectangle of their projected
corners (conservative: the projection of a convex solid lies inside the hull of its corners), so the
cost grows with the screen area of the objects, not with pixels x objects. The loop keeps only a
z-buffer and a primitive id per pixel; normals are recovered afterwards for the visible pixels only
(deferred shading, ``surface``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

EPS = 1e-4  # metres; hits nearer than this along the ray are ignored


@dataclass
class Scene:
    """Primitives of one scene; ``material`` indexes a material table (``disdepth.data.shading``)."""

    planes: list = field(default_factory=list)  # (normal [3], offset d, material): n.X = d
    boxes: list = field(default_factory=list)  # (lo [3], hi [3], material), world axis-aligned
    cylinders: list = field(default_factory=list)  # (cx, cz, radius, y0, y1, material), axis = world y


@dataclass
class Hits:
    """Per-pixel result of ``cast``: t = z-depth (metres, inf = nothing hit) and what was hit."""

    t: np.ndarray  # [H,W] float32
    prim: np.ndarray  # [H,W] int32: planes, then boxes, then cylinders, in scene order; -1 = nothing hit
    ray: np.ndarray  # [3,H,W] float32, world ray with camera-frame z = 1
    origin: np.ndarray  # [3] float32, world (metres)


@functools.lru_cache(maxsize=8)
def _pixel_rays(intrinsics: tuple, height: int, width: int) -> np.ndarray:
    fx, fy, cx, cy = intrinsics
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)]).reshape(3, -1)
    rays.flags.writeable = False  # cached and shared between calls
    return rays


def camera_rays(K: np.ndarray, R: np.ndarray, height: int, width: int) -> np.ndarray:
    """World-frame ray directions [3,H,W] through pixel centres, with camera-frame z = 1."""
    rays = _pixel_rays((float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])), height, width)
    return (np.asarray(R, np.float32) @ rays).reshape(3, height, width)


_CORNER = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)])  # corner i = 4x + 2y + z
_EDGES = [(i, i | bit) for bit in (1, 2, 4) for i in range(8) if not i & bit]
NEAR = 1e-2  # metres; near clipping plane used only to bound screen rectangles


def _screen_rects(lo: np.ndarray, hi: np.ndarray, K: np.ndarray, R: np.ndarray, origin: np.ndarray, *,
                  height: int, width: int) -> list:
    """Pixel rectangles (r0, r1, c0, c1) bounding the projections of boxes lo, hi [N,3]; None if culled.

    The part of a box in front of the near plane is the convex hull of its corners in front plus
    the points where its 12 edges cross that plane; the rectangle bounds their projections.
    """
    corners = np.where(_CORNER[None].astype(bool), hi[:, None], lo[:, None])  # (N, 8, 3)
    cam = (corners - origin) @ np.asarray(R, np.float64)  # world -> camera: R^T (X - o), row-vector form
    z = cam[..., 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        u = K[0, 0] * cam[..., 0] / z + K[0, 2]
        v = K[1, 1] * cam[..., 1] / z + K[1, 2]
    rects = []
    for i in range(len(lo)):
        front = z[i] > NEAR
        if not front.any():
            rects.append(None)
            continue
        us, vs = u[i][front], v[i][front]
        if not front.all():  # straddles the near plane: add the edge crossings
            c = cam[i]
            cross = [c[a] + (NEAR - z[i, a]) / (z[i, b] - z[i, a]) * (c[b] - c[a])
                     for a, b in _EDGES if front[a] != front[b]]
            cross = np.array(cross)
            us = np.concatenate([us, K[0, 0] * cross[:, 0] / NEAR + K[0, 2]])
            vs = np.concatenate([vs, K[1, 1] * cross[:, 1] / NEAR + K[1, 2]])
        c0, c1 = max(int(np.floor(us.min())) - 1, 0), min(int(np.ceil(us.max())) + 2, width)
        r0, r1 = max(int(np.floor(vs.min())) - 1, 0), min(int(np.ceil(vs.max())) + 2, height)
        rects.append((r0, r1, c0, c1) if c0 < c1 and r0 < r1 else None)
    return rects


def _box_t(ray_inv: np.ndarray, origin: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    near, far = None, None
    for k in range(3):  # slab method on one 2-D array per axis (reductions over a size-3 axis are slow)
        a = (lo[k] - origin[k]) * ray_inv[k]
        b = (hi[k] - origin[k]) * ray_inv[k]
        near = np.minimum(a, b) if near is None else np.maximum(near, np.minimum(a, b))
        far = np.maximum(a, b) if far is None else np.minimum(far, np.maximum(a, b))
    return np.where(near <= far, near, np.inf)


def _cylinder_t(ray: np.ndarray, origin: np.ndarray, cylinder: tuple) -> np.ndarray:
    cx, cz, radius, y0, y1 = cylinder[:5]
    rx, ry, rz = ray
    ox, oz = origin[0] - cx, origin[2] - cz
    a = rx * rx + rz * rz
    b = 2 * (ox * rx + oz * rz)
    disc = b * b - 4 * a * (ox * ox + oz * oz - radius * radius)
    t = (-b - np.sqrt(disc)) / (2 * a)  # nearer root; NaN (no hit) fails the comparisons below
    y = origin[1] + t * ry
    return np.where((y >= y0) & (y <= y1), t, np.inf)


def cast(scene: Scene, K: np.ndarray, R: np.ndarray, origin, *, height: int, width: int) -> Hits:
    """Ray-cast ``scene`` from a pinhole camera (K [3,3] pixels, R camera->world [3,3], origin [3] m)."""
    origin = np.asarray(origin, np.float32)
    ray = camera_rays(K, R, height, width)
    hits = Hits(t=np.full((height, width), np.inf, np.float32), prim=np.full((height, width), -1, np.int32),
                ray=ray, origin=origin)
    solids = [(np.asarray(lo, np.float64), np.asarray(hi, np.float64)) for lo, hi, _ in scene.boxes]
    solids += [((cx - r, y0, cz - r), (cx + r, y1, cz + r)) for cx, cz, r, y0, y1, _ in scene.cylinders]
    rects = _screen_rects(np.array(solids).reshape(-1, 2, 3)[:, 0], np.array(solids).reshape(-1, 2, 3)[:, 1],
                          K, R, origin, height=height, width=width) if solids else []
    with np.errstate(divide='ignore', invalid='ignore'):
        inv = 1.0 / ray
        for i, (n, d, _) in enumerate(scene.planes):
            n = np.asarray(n, np.float32)
            t = (d - n @ origin) / np.tensordot(n, ray, 1)
            closer = (t > EPS) & (t < hits.t)
            hits.t[closer], hits.prim[closer] = t[closer], i
        prim = len(scene.planes)
        for i, rect in enumerate(rects):
            if rect is None:
                continue
            r0, r1, c0, c1 = rect
            if i < len(scene.boxes):
                lo, hi, _ = scene.boxes[i]
                t = _box_t(inv[:, r0:r1, c0:c1], origin, np.asarray(lo, np.float32), np.asarray(hi, np.float32))
            else:
                t = _cylinder_t(ray[:, r0:r1, c0:c1], origin, scene.cylinders[i - len(scene.boxes)])
            zbuf = hits.t[r0:r1, c0:c1]
            closer = (t > EPS) & (t < zbuf)
            zbuf[closer] = t[closer]
            hits.prim[r0:r1, c0:c1][closer] = prim + i
    return hits


def surface(hits: Hits, scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Visible surface data: (flat pixel indices [n], world points [3,n], normals [3,n] facing the camera,
    material ids [n]) for the n pixels that hit something."""
    prim_all = hits.prim.reshape(-1)
    idx = np.flatnonzero(prim_all >= 0)
    prim = prim_all[idx]
    t = hits.t.reshape(-1)[idx]
    point = np.stack([hits.origin[k] + hits.ray[k].reshape(-1)[idx] * t for k in range(3)])  # (3, n)
    normal = np.zeros_like(point)
    n_planes, n_boxes = len(scene.planes), len(scene.boxes)
    if n_planes:
        o = hits.origin.astype(np.float64)
        table = np.array([(-1 if d > np.dot(n, o) else 1) * np.asarray(n, np.float64) for n, d, _ in scene.planes],
                         np.float32)
        sel = np.flatnonzero(prim < n_planes)
        normal[:, sel] = table[prim[sel]].T
    if n_boxes:
        sel = np.flatnonzero((prim >= n_planes) & (prim < n_planes + n_boxes))
        box = prim[sel] - n_planes
        bounds = np.array([(b[0], b[1]) for b in scene.boxes], np.float32)[box]  # (m, 2, 3): lo, hi
        best, face = None, None
        for side in range(2):  # the face the hit point lies on: nearest of the 6 planes (1-D ops: fast)
            for k in range(3):
                dist = np.abs(point[k, sel] - bounds[:, side, k])
                if best is None:
                    best, face = dist, np.zeros(len(sel), np.int64)
                else:
                    better = dist < best
                    best, face = np.where(better, dist, best), np.where(better, 3 * side + k, face)
        normal[face % 3, sel] = np.where(face < 3, -1.0, 1.0)  # outward normal of that face
    if scene.cylinders:
        sel = np.flatnonzero(prim >= n_planes + n_boxes)
        cyl = np.array([c[:3] for c in scene.cylinders], np.float32)[prim[sel] - n_planes - n_boxes]
        normal[0, sel] = (point[0, sel] - cyl[:, 0]) / cyl[:, 2]
        normal[2, sel] = (point[2, sel] - cyl[:, 1]) / cyl[:, 2]
    materials = np.array([p[-1] for p in scene.planes] + [b[-1] for b in scene.boxes] +
                         [c[-1] for c in scene.cylinders], np.int64)[prim]
    return idx, point, normal, materials
