"""Embedded synthetic RGB-D scenes: procedural streets and rooms with exact metric depth.

The default dataset of the demo and CI (docs/design.md section 1; arXiv 2404.16386 section 4.1 uses
KITTI and NYU-Depth v2, which this workplace does not have). Scenes are sampled from
``np.random.default_rng((seed, index))`` and ray-cast by ``disdepth.data.raycast``:

    depth(u, v) = z of the first surface hit along the ray through pixel (u, v)   (metres, exact)
    0 where the ray hits nothing (sky) or the hit lies beyond the preset's max depth

Presets (cameras scaled to the requested size by width, square pixels, same horizontal FOV):
    outdoor: KITTI-like, fx = fy = 721.5377 * W / 1242, principal point at KITTI's relative position,
             camera 1.55..1.75 m above a road; buildings (boxes), cars (body, cabin, wheel boxes of
             real size), poles (cylinders); depth 0..80 m; sky invalid.
    indoor:  NYU-like, fx = fy = 518.8579 * W / 640; a room 3..6 m wide, 4..8 m deep, 2.4..3 m high,
             furniture boxes (tables, cabinets, beds); every pixel valid (< 10 m).
Monocular cues present: perspective of the ground plane, texture gradient (world-space textures),
occlusion, known object sizes (cars, doors-high furniture), shading and aerial perspective (outdoor).
"""
from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from disdepth.data.raycast import Scene, cast
from disdepth.data.shading import CHECKER, PLAIN, ROAD, STRIPES, WINDOWS, Materials, shade
from disdepth.data.splits import DatasetError
from disdepth.data.transforms import Sample, augment, item_rng, to_item

PRESETS = {
    # focal and principal point relative to width/height, from KITTI P_rect_02 (2011_09_26) and NYU.
    'outdoor': dict(fx_w=721.5377 / 1242, cx_w=609.5593 / 1242, cy_h=172.854 / 375, max_depth=80.0),
    'indoor': dict(fx_w=518.8579 / 640, cx_w=325.58245 / 640, cy_h=253.73617 / 480, max_depth=10.0),
}


def rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Camera->world rotation [3,3] (radians): positive pitch looks down (+y), yaw right, roll about z."""
    cp, sp, cy, sy, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])  # optical axis (0,0,1) -> (0, sin p, cos p)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return (ry @ rx @ rz).astype(np.float32)


def _colour(rng, lo: float = 0.2, hi: float = 0.9) -> list:
    return list(rng.uniform(lo, hi, 3))


def _car(scene: Scene, mats: Materials, rng, *, x: float, z: float, ground: float) -> None:
    length, width = rng.uniform(3.8, 4.8), rng.uniform(1.6, 1.9)
    body = mats.add(_colour(rng, 0.05, 0.95), PLAIN, 0.5, 0.05)
    dark = mats.add([0.05, 0.05, 0.06], PLAIN, 0.2, 0.1)
    glass = mats.add([0.15, 0.2, 0.25], PLAIN, 0.5, 0.05)
    hw = width / 2
    scene.boxes.append(((x - hw + 0.1, ground - 0.35, z + 0.3), (x + hw - 0.1, ground, z + length - 0.3), dark))
    scene.boxes.append(((x - hw, ground - 1.0, z), (x + hw, ground - 0.3, z + length), body))
    cabin = rng.uniform(0.45, 0.6) * length
    z0 = z + rng.uniform(0.25, 0.4) * (length - cabin)
    scene.boxes.append(((x - hw + 0.1, ground - 1.0 - rng.uniform(0.4, 0.55), z0),
                        (x + hw - 0.1, ground - 1.0, z0 + cabin), glass))


def outdoor_scene(rng: np.random.Generator) -> tuple[Scene, Materials, dict]:
    """A street: road plane, raised sidewalks, building rows, cars, poles. Returns scene, materials, camera."""
    scene, mats = Scene(), Materials()
    ground = rng.uniform(1.55, 1.75)
    road_half, walk = rng.uniform(3.5, 7.0), rng.uniform(1.5, 3.0)
    scene.planes.append(((0, 1, 0), ground, mats.add([0.32, 0.32, 0.33], ROAD, 0.3, 0.35)))
    walk_mat = mats.add(_colour(rng, 0.45, 0.65), CHECKER, rng.uniform(0.5, 1.0), 0.15)
    for side in (-1, 1):
        x0, x1 = sorted((side * road_half, side * (road_half + walk)))
        scene.boxes.append(((x0, ground - 0.15, -10.0), (x1, ground, 250.0), walk_mat))
        z = rng.uniform(-8, 4)
        while z < 140:
            width, gap = rng.uniform(6, 22), rng.uniform(0, 5) * (rng.random() < 0.5)
            if rng.random() > 0.15:
                near = road_half + walk + rng.uniform(0.3, 4.0)
                x0, x1 = sorted((side * near, side * (near + rng.uniform(8, 15))))
                mat = mats.add(_colour(rng, 0.25, 0.85), WINDOWS if rng.random() < 0.7 else STRIPES,
                               rng.uniform(2.6, 3.4), rng.uniform(0.3, 0.6))
                scene.boxes.append(((x0, ground - rng.uniform(4, 22), z), (x1, ground, z + width), mat))
            z += width + gap
        pole_mat = mats.add([0.45, 0.45, 0.45], PLAIN, 0.3, 0.1)
        z = rng.uniform(2, 15)
        while z < 90:
            radius = rng.uniform(0.08, 0.15)
            scene.cylinders.append((side * (road_half + 0.4), z, radius, ground - rng.uniform(4, 8), ground, pole_mat))
            z += rng.uniform(12, 30)
    lanes = [-road_half / 2, road_half / 2]
    if road_half >= 6.0:  # room for parked cars beside the driving lanes without overlapping them
        lanes += [-road_half + 1.1, road_half - 1.1]
    for lane in lanes:
        z = rng.uniform(3, 20)
        while z < 70 and rng.random() < 0.75:
            _car(scene, mats, rng, x=lane + rng.uniform(-0.3, 0.3), z=z, ground=ground)
            z += rng.uniform(6.5, 25)
    camera = dict(origin=(0.0, 0.0, 0.0),
                  R=rotation(np.radians(rng.uniform(-2, 2)), np.radians(rng.uniform(-4, 4)),
                             np.radians(rng.uniform(-1, 1))),
                  ambient=0.35, fog_distance=350.0,
                  sky_top=np.array([0.35, 0.55, 0.85]), sky_horizon=np.array([0.8, 0.85, 0.9]))
    return scene, mats, camera


def indoor_scene(rng: np.random.Generator) -> tuple[Scene, Materials, dict]:
    """A room: floor, ceiling, four walls (planes) and furniture boxes. Returns scene, materials, camera."""
    scene, mats = Scene(), Materials()
    floor = rng.uniform(1.0, 1.6)
    ceiling = floor - rng.uniform(2.4, 3.0)
    half = rng.uniform(1.5, 3.0)
    left, right = -half + rng.uniform(-0.5, 0.5), half + rng.uniform(-0.5, 0.5)
    front, back = rng.uniform(4.0, 8.0), -rng.uniform(1.0, 2.0)
    floor_mat = mats.add(_colour(rng, 0.3, 0.7), CHECKER if rng.random() < 0.5 else STRIPES,
                         rng.uniform(0.3, 0.8), 0.3)
    wall_mat = mats.add(_colour(rng, 0.6, 0.95), PLAIN, rng.uniform(0.2, 1.0), 0.1)
    scene.planes += [((0, 1, 0), floor, floor_mat), ((0, 1, 0), ceiling, mats.add([0.9, 0.9, 0.88])),
                     ((1, 0, 0), left, wall_mat), ((1, 0, 0), right, wall_mat),
                     ((0, 0, 1), front, mats.add(_colour(rng, 0.5, 0.95), STRIPES, 2.0, 0.08)),
                     ((0, 0, 1), back, wall_mat)]
    for _ in range(rng.integers(3, 8)):
        mat = mats.add(_colour(rng, 0.15, 0.8), PLAIN if rng.random() < 0.5 else STRIPES, rng.uniform(0.2, 0.6), 0.25)
        kind = rng.integers(3)
        w, d = rng.uniform(0.4, 2.0), rng.uniform(0.4, 2.0)
        x = rng.uniform(left, max(left, right - w))
        z = rng.uniform(1.0, max(1.0, front - d))
        if kind == 0:  # table: top on four legs
            top = floor - rng.uniform(0.7, 0.8)
            scene.boxes.append(((x, top - 0.04, z), (x + w, top, z + d), mat))
            for lx in (x, x + w - 0.05):
                for lz in (z, z + d - 0.05):
                    scene.boxes.append(((lx, top, lz), (lx + 0.05, floor, lz + 0.05), mat))
        elif kind == 1:  # cabinet or shelf against the front wall
            scene.boxes.append(((x, floor - rng.uniform(0.8, 2.1), front - d / 2), (x + w, floor, front), mat))
        else:  # bed, sofa, box
            scene.boxes.append(((x, floor - rng.uniform(0.3, 0.6), z), (x + w, floor, z + d), mat))
    light = np.array([rng.uniform(-0.5, 0.5), -1.0, rng.uniform(-0.8, 0.2)])
    camera = dict(origin=(0.0, 0.0, 0.0),
                  R=rotation(np.radians(rng.uniform(-5, 20)), np.radians(rng.uniform(-25, 25)),
                             np.radians(rng.uniform(-2, 2))),
                  ambient=0.45, fog_distance=None, light=light / np.linalg.norm(light),
                  sky_top=np.zeros(3), sky_horizon=np.zeros(3))
    return scene, mats, camera


class SyntheticScenes:
    """Deterministic procedural RGB-D renderer.

    ``SyntheticScenes('outdoor', 96, 320, seed=0).render(7)`` -> dict(image uint8 [H,W,3] RGB,
    depth float32 [H,W] metres (0 = invalid), K float32 [3,3] pixels). Same (seed, index), same output.
    Raises:
        ValueError: an unknown preset or a non-positive size.
    """

    def __init__(self, preset: str, height: int, width: int, seed: int = 0):
        if preset not in PRESETS:
            raise ValueError(f'unknown synthetic preset {preset!r}; valid: {sorted(PRESETS)}')
        if height <= 0 or width <= 0:
            raise ValueError(f'image size must be positive, got {height}x{width}')
        self.preset, self.height, self.width, self.seed = preset, height, width, seed
        p = PRESETS[preset]
        self.max_depth = p['max_depth']
        f = p['fx_w'] * width
        self.K = np.array([[f, 0, p['cx_w'] * width], [0, f, p['cy_h'] * height], [0, 0, 1]], np.float32)

    def render(self, index: int, forward: float = 0.0) -> dict:
        """Scene ``index`` seen from ``forward`` metres along the world z axis (a camera moving through it,
        as in a recording; scripts/synthetic_recording.py)."""
        rng = np.random.default_rng((self.seed, index))
        scene, mats, cam = (outdoor_scene if self.preset == 'outdoor' else indoor_scene)(rng)
        if 'light' not in cam:  # sun: random azimuth, 25..70 degrees elevation (up is -y)
            az, el = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(25, 70))
            cam['light'] = np.array([np.cos(el) * np.cos(az), -np.sin(el), np.cos(el) * np.sin(az)])
        origin = (cam['origin'][0], cam['origin'][1], cam['origin'][2] + forward)
        hits = cast(scene, self.K, cam['R'], origin, height=self.height, width=self.width)
        rgb = shade(hits, scene, mats, light=cam['light'], ambient=cam['ambient'], sky_top=cam['sky_top'],
                    sky_horizon=cam['sky_horizon'], fog_distance=cam['fog_distance'])
        depth = np.where(np.isfinite(hits.t) & (hits.t <= self.max_depth), hits.t, 0).astype(np.float32)
        return dict(image=(rgb * 255 + 0.5).astype(np.uint8), depth=depth, K=self.K.copy())


TEST_OFFSET = 1_000_000_000  # test scenes use indices from here: disjoint from any training index


class SyntheticDataset(Dataset):
    """Torch dataset over ``SyntheticScenes``: train item i renders scene i at (cfg.height, cfg.width),
    with hflip and photometric augmentation when cfg.augment (no rotation: the generator already
    rolls the camera); test item i renders scene TEST_OFFSET + i at (cfg.eval_height, cfg.eval_width)."""

    def __init__(self, cfg, split: str, preset: str):
        self.cfg, self.train = cfg, split == 'train'
        size = (cfg.height, cfg.width) if self.train else (cfg.eval_height, cfg.eval_width)
        self.length = cfg.num_train if self.train else cfg.num_test
        if self.length <= 0:
            raise DatasetError(f'data.num_{split}: expected a positive number of synthetic images, '
                               f'got {self.length}')
        self.scenes = SyntheticScenes(preset, *size, seed=cfg.seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        out = self.scenes.render(index if self.train else TEST_OFFSET + index)
        s = Sample(out['image'].astype(np.float32) / 255.0, out['depth'], out['K'].astype(np.float64))
        if self.train and self.cfg.augment:
            s = augment(item_rng(), s, max_rotation=0.0, brightness=(0.8, 1.2))
        return to_item(s, min_depth=self.cfg.min_depth, max_depth=self.cfg.max_depth,
                       name=f'{self.scenes.preset}_{"train" if self.train else "test"}_{index:06d}')
