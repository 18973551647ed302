"""KITTI / NYU loaders on fixture datasets written in the real on-disk formats, and their bad-input errors."""
from __future__ import annotations

import cv2
import h5py
import numpy as np
import pytest

from disdepth.config import DataConfig
from disdepth.data import DatasetError, build_dataset

KITTI_H, KITTI_W = 375, 1242
P_RECT_02 = [700.0, 0, 600.5, 40.0, 0, 705.0, 170.25, 0.2, 0, 0, 1, 0.003]
RGB = 'date/drive_sync/image_02/data/{:010d}.png'
GT = 'drive_sync/proj_depth/groundtruth/image_02/{:010d}.png'


def write_kitti(root, n=2, calib=True):
    """data_root/date/... RGB PNGs + calib, gt_root/... uint16 depth PNGs; returns (cfg, depth arrays)."""
    rng = np.random.default_rng(0)
    depths = []
    for i in range(n):
        (root / 'raw' / RGB.format(i)).parent.mkdir(parents=True, exist_ok=True)
        (root / 'gt' / GT.format(i)).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / 'raw' / RGB.format(i)), rng.integers(0, 255, (KITTI_H, KITTI_W, 3), np.uint8))
        raw = (rng.random((KITTI_H, KITTI_W)) < 0.3) * rng.integers(1, 90 * 256, (KITTI_H, KITTI_W))
        cv2.imwrite(str(root / 'gt' / GT.format(i)), raw.astype(np.uint16))
        depths.append(raw / 256.0)
    if calib:
        (root / 'raw' / 'date' / 'calib_cam_to_cam.txt').write_text(
            'calib_time: 09-Jan-2012 13:57:47\nP_rect_02: ' + ' '.join(map(str, P_RECT_02)) + '\n')
    split = root / 'split.txt'
    split.write_text(''.join(f'{RGB.format(i)} {GT.format(i)} 721.5377\n' for i in range(n)) +
                     f'{RGB.format(0)} None 721.5377\n')
    cfg = DataConfig(dataset='kitti', data_root=str(root / 'raw'), gt_root=str(root / 'gt'), train_split=str(split),
                     test_split=str(split), height=352, width=704, augment=False)
    return cfg, depths


def test_kitti_fixture_metres_mask_crop_intrinsics(tmp_path):
    """uint16/256 metres, KB crop offsets (23, 13), Garg crop, 80 m cap, K from P_rect_02 shifted by the crop."""
    cfg, depths = write_kitti(tmp_path)
    with pytest.warns(UserWarning, match='no ground truth'):
        ds = build_dataset(cfg, 'test')
    assert len(ds) == 2 and ds.without_ground_truth == [RGB.format(0)]
    item = ds[1]
    depth, mask = item['depth'][0].numpy(), item['mask'][0].numpy()
    np.testing.assert_array_equal(depth, depths[1][23:, 13:1229].astype(np.float32))
    expected = np.zeros_like(mask)
    expected[130:348, 31:1184] = True  # Garg rows [153, 371), columns [44, 1197) of the full frame
    expected &= (depth > 1e-3) & (depth <= 80)
    assert np.array_equal(mask, expected) and (depth > 80).any()
    np.testing.assert_allclose(item['K'].numpy(), [[700, 0, 600.5 - 13], [0, 705, 170.25 - 23], [0, 0, 1]])
    assert item['focal'] == pytest.approx(700.0)


def test_kitti_without_calib_uses_split_focal(tmp_path):
    """No calib file: fx = fy = the split focal, principal point at the image centre (with a warning)."""
    cfg, _ = write_kitti(tmp_path, n=1, calib=False)
    with pytest.warns(UserWarning):
        ds = build_dataset(cfg, 'test')
    with pytest.warns(UserWarning, match='calib'):
        K = ds[0]['K'].numpy()
    np.testing.assert_allclose(K, [[721.5377, 0, 620.5 - 13], [0, 721.5377, 187 - 23], [0, 0, 1]], rtol=1e-6)


def test_kitti_train_item_size_and_k_follow_crop(tmp_path):
    """Train crops are cfg-sized windows of the KB crop, and K's principal point moves with the window."""
    cfg, depths = write_kitti(tmp_path, n=1)
    with pytest.warns(UserWarning):
        ds = build_dataset(cfg, 'train')
    item = ds[0]
    assert item['image'].shape == (3, 352, 704)
    K = item['K'].numpy()
    top, left = round(170.25 - K[1, 2]), round(600.5 - K[0, 2])
    window = depths[0][top:top + 352, left:left + 704].astype(np.float32)
    np.testing.assert_array_equal(item['depth'][0].numpy(), window)


def write_nyu(root, n=2):
    rng = np.random.default_rng(1)
    lines, depths = [], []
    for i in range(n):
        (root / 'scene').mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / 'scene' / f'rgb_{i:05d}.jpg'), rng.integers(0, 255, (480, 640, 3), np.uint8))
        raw = rng.integers(0, 12000, (480, 640)).astype(np.uint16)
        raw[100:120, 200:260] = 0  # a hole
        cv2.imwrite(str(root / 'scene' / f'sync_depth_{i:05d}.png'), raw)
        depths.append(raw / 1000.0)
        lines.append(f'/scene/rgb_{i:05d}.jpg /scene/sync_depth_{i:05d}.png 518.8579\n')
    (root / 'split.txt').write_text(''.join(lines))
    cfg = DataConfig(dataset='nyu', data_root=str(root), gt_root=str(root), train_split=str(root / 'split.txt'),
                     test_split=str(root / 'split.txt'), height=416, width=544, max_depth=10.0, augment=True)
    return cfg, depths


def test_nyu_sync_fixture_metres_eigen_crop_intrinsics(tmp_path):
    """uint16/1000 metres, holes and > 10 m masked, Eigen crop [45:471, 41:601], NYU K."""
    cfg, depths = write_nyu(tmp_path)
    item = build_dataset(cfg, 'test')[0]
    depth, mask = item['depth'][0].numpy(), item['mask'][0].numpy()
    np.testing.assert_array_equal(depth, depths[0].astype(np.float32))
    expected = np.zeros_like(mask)
    expected[45:471, 41:601] = True
    assert np.array_equal(mask, expected & (depth > 1e-3) & (depth <= 10))
    np.testing.assert_allclose(item['K'].numpy(), [[518.8579, 0, 325.58245], [0, 519.46961, 253.73617], [0, 0, 1]],
                               rtol=1e-6)


def test_nyu_train_crop_inside_valid_area(tmp_path):
    """Augmented train items are 416x544, and the crop stays inside BTS's valid area (K says where)."""
    cfg, _ = write_nyu(tmp_path)
    ds = build_dataset(cfg, 'train')
    for _ in range(4):
        item = ds[1]
        assert item['image'].shape == (3, 416, 544) and item['mask'].shape == (1, 416, 544)
        assert 0 <= item['image'].min() and item['image'].max() <= 1


def test_nyu_labelled_mat_layout(tmp_path):
    """The HDF5 .mat stores images [N,3,W,H] and depths [N,W,H]; 1-based indices select the test frames."""
    rng = np.random.default_rng(2)
    images = rng.integers(0, 255, (3, 3, 640, 480), np.uint8)
    depths = rng.uniform(0.5, 12, (3, 640, 480)).astype(np.float32)
    with h5py.File(tmp_path / 'labeled.mat', 'w') as f:
        f['images'], f['depths'] = images, depths
    (tmp_path / 'test_idx.txt').write_text('3\n1\n')
    cfg = DataConfig(dataset='nyu', nyu_mat=str(tmp_path / 'labeled.mat'),
                     nyu_test_indices=str(tmp_path / 'test_idx.txt'), max_depth=10.0)
    ds = build_dataset(cfg, 'test')
    assert len(ds) == 2
    item = ds[0]  # MATLAB index 3 -> frame 2
    np.testing.assert_allclose(item['image'].numpy(), images[2].transpose(0, 2, 1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(item['depth'][0].numpy(), depths[2].T)
    mask = item['mask'][0].numpy()
    assert not mask[:45].any() and mask[45:471, 41:601].sum() == (depths[2].T[45:471, 41:601] <= 10).sum()
    (tmp_path / 'bad_idx.txt').write_text('0 4\n')
    cfg.nyu_test_indices = str(tmp_path / 'bad_idx.txt')
    with pytest.raises(DatasetError, match='1-based'):
        build_dataset(cfg, 'test')
    cfg.nyu_test_indices = None
    with pytest.raises(DatasetError, match='nyu_test_indices'):
        build_dataset(cfg, 'test')


@pytest.mark.parametrize('problem, message', [
    ('missing_root', 'data_root'),
    ('missing_file', '0000000001.png'),
    ('eight_bit', '16-bit'),
    ('wrong_size', 'expected the RGB size'),
    ('empty_split', 'lists no samples'),
    ('bad_line', 'expected "rgb_path depth_path focal"'),
])
@pytest.mark.filterwarnings('ignore:.*no ground truth')
def test_bad_inputs_raise_naming_file_and_expectation(tmp_path, problem, message):
    """Each broken dataset fails before training with a DatasetError naming what is wrong."""
    cfg, _ = write_kitti(tmp_path)
    gt1 = tmp_path / 'gt' / GT.format(1)
    if problem == 'missing_root':
        cfg.data_root = str(tmp_path / 'nope')
    elif problem == 'missing_file':
        (tmp_path / 'raw' / RGB.format(1)).unlink()
    elif problem == 'eight_bit':
        cv2.imwrite(str(gt1), np.zeros((KITTI_H, KITTI_W), np.uint8))
    elif problem == 'wrong_size':
        cv2.imwrite(str(gt1), np.zeros((370, 1224), np.uint16))
    elif problem == 'empty_split':
        (tmp_path / 'split.txt').write_text('\n')
    else:
        (tmp_path / 'split.txt').write_text('a.png b.png\n')
    with pytest.raises(DatasetError, match=message) as err:
        build_dataset(cfg, 'test')
    if problem in ('missing_file', 'eight_bit', 'wrong_size'):
        assert 'split.txt:2' in str(err.value)  # names the split line too


def test_unknown_split_and_dataset_rejected():
    """Typos in the split or dataset name raise DatasetError listing the valid names."""
    with pytest.raises(DatasetError, match="'train' or 'test'"):
        build_dataset(DataConfig(), 'val')
    cfg = DataConfig()
    cfg.dataset = 'cityscapes'
    with pytest.raises(DatasetError, match='synthetic_outdoor'):
        build_dataset(cfg, 'train')
