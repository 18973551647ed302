"""NYU-Depth v2 datasets: the BTS "sync" layout and the official labelled .mat.

Protocol of arXiv 2404.16386 section 4.1 (docs/design.md section 2): random 416x544 training crops,
rotation U(-2.5, 2.5) degrees, flip, photometric augmentation (brightness U(0.75, 1.25)); evaluation
on 480x640 with the Eigen crop rows [45, 471), columns [41, 601) and depth in (1e-3, 10] m.
Reference code: BTS ``bts_dataloader.py``, ``extract_official_train_test_set_from_mat.py``.

Sync layout: split lines ``/kitchen_0028b/rgb_00045.jpg /kitchen_0028b/sync_depth_00045.png 518.8579``;
depth (m) = uint16 / 1000, 0 = hole. Training crops are taken inside rows [45, 472), columns [43, 608)
(BTS cuts the white border of the registered images there).
Labelled .mat (``nyu_depth_v2_labeled.mat``, MATLAB v7.3 = HDF5): ``images`` uint8 [N,3,W=640,H=480] and
``depths`` float [N,640,480] metres (MATLAB's column-major order, hence the transposes), in-painted
(the same depths BTS extracts for its test set). The test indices are read from
``data.nyu_test_indices``: integers, 1-based as in the official ``splits.mat`` ``testNdxs`` (654 of them),
whitespace separated; ``data.test_split`` stays the sync-layout split.
(``splits.mat`` itself is MATLAB v5, which h5py cannot read; ``print(*testNdxs)`` it once.)
Intrinsics: fx from the split (518.8579 for the .mat), fy = fx * 519.46961 / 518.8579,
cx = 325.58245, cy = 253.73617 (NYU toolbox ``camera_params.m``).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from torch.utils.data import Dataset

from disdepth.data.splits import DatasetError, read_depth_png, read_rgb, read_split, require_dir, validate
from disdepth.data.transforms import Sample, augment, item_rng, random_crop, to_item

DEPTH_SCALE = 1000.0
HEIGHT, WIDTH = 480, 640
FX, FY, CX, CY = 518.8579, 519.46961, 325.58245, 253.73617
EIGEN_CROP = (45, 471, 41, 601)  # top, bottom, left, right (evaluation mask)
TRAIN_BOUNDS = (45, 472, 43, 608)  # top, bottom, left, right (valid area for training crops)


def intrinsics(focal: float = FX) -> np.ndarray:
    """NYU Kinect RGB intrinsics K [3,3] (pixels) with fx = ``focal``."""
    return np.array([[focal, 0, CX], [0, focal * FY / FX, CY], [0, 0, 1]])


class NyuDataset(Dataset):
    """NYU-Depth v2, sync layout (data_root = gt_root usually). Train: cfg.height x cfg.width crops;
    test: 480x640 with the Eigen-crop mask.

    Raises:
        DatasetError: as ``KittiDataset`` does.
    """

    def __init__(self, cfg, split: str):
        self.cfg, self.train = cfg, split == 'train'
        self.data_root = require_dir(cfg.data_root, 'data.data_root (NYU images)')
        self.gt_root = require_dir(cfg.gt_root or cfg.data_root, 'data.gt_root (NYU depth)')
        split_path = cfg.train_split if self.train else cfg.test_split
        self.entries = read_split(split_path)
        missing = [e for e in self.entries if e.depth is None]
        if missing:
            raise DatasetError(f'{split_path}:{missing[0].line}: NYU samples need a depth file, got None')
        top, bottom, left, right = TRAIN_BOUNDS
        if self.train and (cfg.height > bottom - top or cfg.width > right - left):
            raise DatasetError(f'train crop {cfg.height}x{cfg.width} exceeds the valid NYU area '
                               f'{bottom - top}x{right - left}')
        validate(self.entries, self.data_root, self.gt_root, split_path, min_size=(HEIGHT, WIDTH))

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        s = Sample(read_rgb(self.data_root / entry.rgb), read_depth_png(self.gt_root / entry.depth, DEPTH_SCALE),
                   intrinsics(entry.focal))
        if s.depth.shape != (HEIGHT, WIDTH) or s.image.shape[:2] != (HEIGHT, WIDTH):
            raise DatasetError(f'{self.data_root / entry.rgb}: expected 480x640 image and depth, got '
                               f'{s.image.shape[:2]} and {s.depth.shape}')
        region = None
        if self.train:
            rng = item_rng()
            s = random_crop(rng, s, self.cfg.height, self.cfg.width, bounds=TRAIN_BOUNDS)
            if self.cfg.augment:
                s = augment(rng, s, max_rotation=2.5, brightness=(0.75, 1.25))
        else:
            region = EIGEN_CROP
        return to_item(s, min_depth=self.cfg.min_depth, max_depth=self.cfg.max_depth,
                       name=entry.rgb, eval_region=region)


def read_indices(path, count: int) -> list[int]:
    """1-based indices from a text file -> 0-based list; DatasetError if missing, empty or out of 1..count."""
    if path is None:
        raise DatasetError('data.nyu_mat needs data.nyu_test_indices: a text file of the official test indices '
                           '(1-based, splits.mat testNdxs, 654 numbers); or unset data.nyu_mat to evaluate '
                           'on data.test_split (sync layout)')
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'test index file not found: {path}')
    try:
        indices = [int(v) for v in path.read_text().split()]
    except ValueError as err:
        raise DatasetError(f'{path}: expected whitespace-separated integers ({err})') from None
    if not indices:
        raise DatasetError(f'{path}: no indices (expected the 654 official 1-based test indices)')
    bad = [i for i in indices if not 1 <= i <= count]
    if bad:
        raise DatasetError(f'{path}: index {bad[0]} outside 1..{count} (indices are 1-based, MATLAB style)')
    return [i - 1 for i in indices]


class NyuMatDataset(Dataset):
    """Test frames of the official labelled .mat (HDF5). Items: 480x640, Eigen-crop mask."""

    def __init__(self, cfg):
        self.cfg, self.path = cfg, Path(cfg.nyu_mat)
        if not self.path.is_file():
            raise DatasetError(f'NYU labelled .mat not found: {self.path}')
        try:
            with h5py.File(self.path, 'r') as f:
                images, depths = f['images'].shape, f['depths'].shape
        except (OSError, KeyError) as err:
            raise DatasetError(f'{self.path}: expected the HDF5 (v7.3) labelled .mat with "images" and '
                               f'"depths" ({err})') from None
        if images[1:] != (3, WIDTH, HEIGHT) or depths[1:] != (WIDTH, HEIGHT) or images[0] != depths[0]:
            raise DatasetError(f'{self.path}: expected images [N,3,640,480] and depths [N,640,480], '
                               f'got {images} and {depths}')
        self.indices = read_indices(cfg.nyu_test_indices, images[0])
        self._file = None  # opened lazily: h5py handles must not cross DataLoader worker forks

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        if self._file is None:
            self._file = h5py.File(self.path, 'r')
        i = self.indices[index]
        image = self._file['images'][i].transpose(2, 1, 0).astype(np.float32) / 255.0  # [3,W,H] -> [H,W,3]
        depth = np.ascontiguousarray(self._file['depths'][i].T, np.float32)
        s = Sample(np.ascontiguousarray(image), depth, intrinsics())
        return to_item(s, min_depth=self.cfg.min_depth, max_depth=self.cfg.max_depth,
                       name=f'{self.path.name}:{i + 1}', eval_region=EIGEN_CROP)
