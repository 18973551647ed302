"""The six real KITTI / NYU frames of ../shared/data/real load with the right units, masks and intrinsics."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from disdepth.config import DataConfig
from disdepth.data import build_dataset
from disdepth.metrics import compute_metrics

REAL = Path(__file__).resolve().parents[2] / '..' / 'shared' / 'data' / 'real'
pytestmark = pytest.mark.skipif(not REAL.is_dir(),
                                reason=f'real frames not present at {REAL} (shared/ not checked out)')
KITTI_FRAMES = ['0000000005', '0000000050', '0000000100']
NYU_FRAMES = ['00000', '00050', '00100']


@pytest.fixture
def kitti_cfg(tmp_path):
    split = tmp_path / 'kitti.txt'
    split.write_text(''.join(f'rgb/{f}.png depth/{f}.png 721.5377\n' for f in KITTI_FRAMES))
    root = str(REAL / 'kitti')
    return DataConfig(dataset='kitti', data_root=root, gt_root=root, train_split=str(split), test_split=str(split),
                      height=352, width=704, augment=False)


@pytest.fixture
def nyu_cfg(tmp_path):
    split = tmp_path / 'nyu.txt'
    split.write_text(''.join(f'rgb/rgb_{f}.jpg depth/sync_depth_{f}.png 518.8579\n' for f in NYU_FRAMES))
    root = str(REAL / 'nyu')
    return DataConfig(dataset='nyu', data_root=root, gt_root=root, train_split=str(split), test_split=str(split),
                      height=416, width=544, max_depth=10.0, augment=False)


def test_kitti_real_frames_units_mask_intrinsics(kitti_cfg):
    """value/256 metres on the KB crop, sparse LiDAR holes masked, Garg crop, K from the real calib file."""
    ds = build_dataset(kitti_cfg, 'test')
    assert len(ds) == 3
    for frame, item in zip(KITTI_FRAMES, (ds[i] for i in range(3)), strict=True):
        raw = cv2.imread(str(REAL / 'kitti' / 'depth' / f'{frame}.png'), cv2.IMREAD_UNCHANGED)
        assert raw.shape == (375, 1242) and raw.dtype == np.uint16
        depth = item['depth'][0].numpy()
        assert depth.shape == (352, 1216)
        np.testing.assert_array_equal(depth, raw[23:375, 13:1229].astype(np.float32) / 256)
        valid = (depth > 0).mean()
        assert 0.05 < valid < 0.5  # sparse: most pixels are holes
        mask = item['mask'][0].numpy()
        garg = np.zeros_like(mask)
        garg[130:348, 31:1184] = True  # rows [153, 371), columns [44, 1197) of the 375x1242 frame
        assert np.array_equal(mask, garg & (depth > 1e-3) & (depth <= 80))
        np.testing.assert_allclose(item['K'].numpy(), [[721.5377, 0, 609.5593 - 13], [0, 721.5377, 172.854 - 23],
                                                      [0, 0, 1]], rtol=1e-6)
        assert 2 < depth[mask].min() and depth[mask].max() <= 80


def test_kitti_train_crop_keeps_intrinsics_consistent(kitti_cfg):
    """A random 352x704 training crop is the KB-cropped frame's window that K's principal point says."""
    item = build_dataset(kitti_cfg, 'train')[1]
    raw = cv2.imread(str(REAL / 'kitti' / 'depth' / f'{KITTI_FRAMES[1]}.png'), cv2.IMREAD_UNCHANGED) / 256.0
    K = item['K'].numpy().astype(np.float64)
    left, top = round(609.5593 - K[0, 2]), round(172.854 - K[1, 2])
    assert top == 23 and 13 <= left <= 13 + 1216 - 704
    np.testing.assert_allclose(item['depth'][0].numpy(), raw[top:top + 352, left:left + 704], rtol=1e-7)


def test_nyu_real_frames_units_holes_intrinsics(nyu_cfg):
    """value/1000 metres at 480x640; holes (0) are masked; Eigen crop; NYU intrinsics with the split focal."""
    ds = build_dataset(nyu_cfg, 'test')
    for frame, item in zip(NYU_FRAMES, (ds[i] for i in range(3)), strict=True):
        raw = cv2.imread(str(REAL / 'nyu' / 'depth' / f'sync_depth_{frame}.png'), cv2.IMREAD_UNCHANGED)
        depth, mask = item['depth'][0].numpy(), item['mask'][0].numpy()
        np.testing.assert_array_equal(depth, raw.astype(np.float32) / 1000)
        assert item['image'].shape == (3, 480, 640)
        assert 0.3 < depth[depth > 0].min() and depth.max() < 10  # an indoor room, in metres
        assert not mask[:45].any() and not mask[471:].any() and not mask[:, :41].any() and not mask[:, 601:].any()
        assert not mask[depth == 0].any() and mask[45:471, 41:601].sum() == ((depth[45:471, 41:601] > 1e-3)
                                                                              & (depth[45:471, 41:601] <= 10)).sum()
        np.testing.assert_allclose(item['K'].numpy(), [[518.8579, 0, 325.58245], [0, 519.46961, 253.73617],
                                                      [0, 0, 1]], rtol=1e-6)


def test_abs_rel_on_a_real_sparse_kitti_frame(kitti_cfg):
    """pred = gt * 1.1 gives AbsRel exactly 0.1 (and d1 = 1) over a real frame's sparse valid pixels."""
    item = build_dataset(kitti_cfg, 'test')[0]
    gt, mask = item['depth'][0].numpy(), item['mask'][0].numpy()
    m = compute_metrics(gt * 1.1, gt, mask, max_depth=1000.0)
    assert m['abs_rel'] == pytest.approx(0.1, rel=1e-6) and m['d1'] == 1.0
