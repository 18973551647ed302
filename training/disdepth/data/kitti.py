"""KITTI (Eigen split) depth dataset in the BTS/AdaBins protocol.

Protocol of arXiv 2404.16386 section 4.1 (docs/design.md section 2): Eigen split files, KB crop
352x1216, random 352x704 training crops, rotation U(-1, 1) degrees, flip, photometric augmentation;
evaluation on the KB crop with the Garg crop and depth in (1e-3, 80] m. Reference code: BTS
``bts_dataloader.py`` and ``bts_eval.py``.

Layout (docs/design.md section 3):
    data_root/2011_09_26/2011_09_26_drive_0001_sync/image_02/data/0000000005.png     (RGB)
    gt_root/2011_09_26_drive_0001_sync/proj_depth/groundtruth/image_02/0000000005.png (uint16)
    depth (m) = value / 256, 0 = no measurement.
Intrinsics: the rectified projection P_rect_0X (X from ``image_0X`` in the path, default 2) of
``calib_cam_to_cam.txt`` found in a folder above the image (also ``<folder>/calib/``), up to
data_root; without a calib file, fx = fy = the split file's focal and the principal point is the
image centre (an approximation: KITTI's is ~10 px off; a warning says so once).
Garg crop (in the full image): rows [0.40810811 H, 0.99189189 H), columns [0.03594771 W,
0.96405229 W); it lies inside the KB crop, so it is applied there after shifting.
"""
from __future__ import annotations

import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from disdepth.data.splits import DatasetError, read_depth_png, read_rgb, read_split, require_dir, validate
from disdepth.data.transforms import KB_HEIGHT, KB_WIDTH, Sample, augment, item_rng, kb_crop, random_crop, to_item

DEPTH_SCALE = 256.0
GARG = (0.40810811, 0.99189189, 0.03594771, 0.96405229)  # top, bottom (x H), left, right (x W)


@lru_cache(maxsize=64)
def read_calib(path: Path) -> dict:
    """``calib_cam_to_cam.txt`` -> {key: float64 array}.

    Raises:
        DatasetError: a malformed file.
    """
    values = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(':')
        try:
            values[key.strip()] = np.array([float(v) for v in rest.split()])
        except ValueError:
            continue  # calib_time is a date, not numbers
    if not any(k.startswith('P_rect_') for k in values):
        raise DatasetError(f'{path}: no P_rect_0X entries (expected a KITTI calib_cam_to_cam.txt)')
    return values


def find_calib(image: Path, data_root: Path):
    """The calib_cam_to_cam.txt nearest above ``image`` (or in a calib/ folder there), else None."""
    for folder in image.parents:
        for candidate in (folder / 'calib_cam_to_cam.txt', folder / 'calib' / 'calib_cam_to_cam.txt'):
            if candidate.is_file():
                return candidate
        if folder in (data_root, folder.parent):
            return None
    return None


class KittiDataset(Dataset):
    """KITTI Eigen split. Items as ``disdepth.data.build_dataset`` documents; train (cfg.height x
    cfg.width crops of the KB crop) or test (KB crop 352x1216, Garg-cropped mask).

    Raises:
        DatasetError: (before any training) a missing root/split/file, a depth PNG that is not 16-bit or not the
            image's size, an image smaller than the KB crop, or an empty split.
    """

    def __init__(self, cfg, split: str):
        self.cfg, self.train = cfg, split == 'train'
        self.data_root = require_dir(cfg.data_root, 'data.data_root (KITTI raw data)')
        self.gt_root = require_dir(cfg.gt_root, 'data.gt_root (KITTI annotated depth)')
        split_path = cfg.train_split if self.train else cfg.test_split
        entries = read_split(split_path)
        self.entries = [e for e in entries if e.depth is not None]
        # the Eigen test split lists frames without ground truth; BTS skips them too (evaluate.py records them)
        self.without_ground_truth = [e.rgb for e in entries if e.depth is None]
        if self.without_ground_truth:
            warnings.warn(f'{split_path}: {len(self.without_ground_truth)} of {len(entries)} samples have no '
                          'ground truth (depth "None") and are left out', stacklevel=2)
        if not self.entries:
            raise DatasetError(f'{split_path}: no sample has a ground-truth depth file')
        if self.train and (cfg.height > KB_HEIGHT or cfg.width > KB_WIDTH):
            raise DatasetError(f'train crop {cfg.height}x{cfg.width} is larger than the KB crop 352x1216')
        validate(self.entries, self.data_root, self.gt_root, split_path, min_size=(KB_HEIGHT, KB_WIDTH))
        self._warned = False

    def __len__(self) -> int:
        return len(self.entries)

    def intrinsics(self, entry, height: int, width: int) -> np.ndarray:
        """K [3,3] float64 of the full image (see module docstring for the source)."""
        rgb = self.data_root / entry.rgb
        calib = find_calib(rgb, self.data_root)
        if calib is not None:
            camera = re.search(r'image_0(\d)', entry.rgb)
            P = read_calib(calib).get(f'P_rect_0{camera.group(1) if camera else 2}')
            if P is None:
                raise DatasetError(f'{calib}: no P_rect entry for the camera of {rgb}')
            return P.reshape(3, 4)[:, :3].copy()
        if not self._warned:
            warnings.warn(f'no calib_cam_to_cam.txt above {rgb}: using the split focal and the image '
                          'centre as principal point', stacklevel=2)
            self._warned = True
        return np.array([[entry.focal, 0, (width - 1) / 2], [0, entry.focal, (height - 1) / 2], [0, 0, 1]])

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        image = read_rgb(self.data_root / entry.rgb)
        depth = read_depth_png(self.gt_root / entry.depth, DEPTH_SCALE)
        h, w = depth.shape
        if image.shape[:2] != (h, w):
            raise DatasetError(f'{self.gt_root / entry.depth}: depth is {h}x{w}, image is {image.shape[:2]}')
        s = kb_crop(Sample(image, depth, self.intrinsics(entry, h, w)))
        region = None
        if self.train:
            rng = item_rng()
            s = random_crop(rng, s, self.cfg.height, self.cfg.width)
            if self.cfg.augment:
                s = augment(rng, s, max_rotation=1.0, brightness=(0.9, 1.1))
        else:  # Garg crop, from full-image to KB-crop coordinates
            top, left = h - KB_HEIGHT, (w - KB_WIDTH) // 2
            region = (int(GARG[0] * h) - top, int(GARG[1] * h) - top, int(GARG[2] * w) - left,
                      int(GARG[3] * w) - left)
        return to_item(s, min_depth=self.cfg.min_depth, max_depth=self.cfg.max_depth,
                       name=entry.rgb, eval_region=region)
