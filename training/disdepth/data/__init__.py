"""Datasets: KITTI Eigen, NYU-Depth v2, embedded synthetic scenes (arXiv 2404.16386 section 4.1), and the
robot's own recordings (``recordings``: rosbag2 or image folders, disdepth/data/recording_cache.py).

``build_dataset(cfg.data, 'train' | 'test'[, labeller])`` returns a torch Dataset whose items are dicts:
    image float32 [3,H,W] RGB 0..1; depth float32 [1,H,W] metres (0 = invalid);
    mask bool [1,H,W] (min_depth < depth <= max_depth, plus the Garg/Eigen crop at test);
    K float32 [3,3] pixels at this crop/size; focal float (= K[0,0]); name str.
Sizes: train (cfg.height, cfg.width); test (cfg.eval_height, cfg.eval_width) for synthetic, the KB crop
352x1216 for KITTI, 480x640 for NYU, (height, width) / (eval_height, eval_width) for recordings. Splits are
validated up front: problems raise ``DatasetError``.
"""
from __future__ import annotations

from disdepth.data.splits import DatasetError

__all__ = ['DATASETS', 'DatasetError', 'build_dataset', 'check_same_data', 'data_identity']

#: the values of ``data.dataset`` (disdepth.config validates against them). The config imports this package for
#: them, so the dataset modules are imported only where one is chosen: loading the config loads no dataset (nor,
#: through the recordings, the runtime's bag reader).
DATASETS = ('kitti', 'nyu', 'synthetic_outdoor', 'synthetic_indoor', 'recordings')


def data_identity(cfg) -> dict:
    """What the training data is, for the checkpoint: recordings, the cache key of each; {} otherwise (fixed
    datasets).

    Raises:
        DatasetError: a recording is missing.
    """
    if cfg.dataset != 'recordings':
        return {}
    from disdepth.data import recording_cache  # noqa: PLC0415 - the chosen dataset only

    return recording_cache.data_identity(cfg)


def check_same_data(started: dict | None, now: dict) -> None:
    """``--resume``: the data must be what the run started with.

    Raises:
        DatasetError: one line naming the recording that changed.
    """
    if not started and not now:  # fixed datasets: nothing recorded, nothing to compare
        return
    from disdepth.data import recording_cache  # noqa: PLC0415 - the chosen dataset only

    recording_cache.check_same_data(started, now)


def build_dataset(cfg, split: str, labeller=None):
    """Dataset for ``cfg.dataset`` (one of ``DATASETS``) and ``split``.

    For NYU evaluation, ``cfg.nyu_mat`` (the labelled .mat, with ``cfg.nyu_test_indices``) takes precedence
    over the sync-layout ``cfg.test_split``. ``labeller`` (``disdepth.build.build_labeller``: a frozen metric
    teacher) gives the targets of recordings without a depth topic.
    Raises:
        DatasetError: an unknown dataset or split, or invalid files (a ValueError).
    """
    if split not in ('train', 'test'):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    if cfg.dataset == 'kitti':
        from disdepth.data.kitti import KittiDataset  # noqa: PLC0415 - the chosen dataset only

        return KittiDataset(cfg, split)
    if cfg.dataset == 'nyu':
        from disdepth.data.nyu import NyuDataset, NyuMatDataset  # noqa: PLC0415 - the chosen dataset only

        return NyuMatDataset(cfg) if split == 'test' and cfg.nyu_mat else NyuDataset(cfg, split)
    if cfg.dataset.startswith('synthetic_'):
        from disdepth.data.synthetic import SyntheticDataset  # noqa: PLC0415 - the chosen dataset only

        return SyntheticDataset(cfg, split, cfg.dataset.split('_', 1)[1])
    if cfg.dataset == 'recordings':
        from disdepth.data import recording_cache  # noqa: PLC0415 - the chosen dataset only

        return recording_cache.RecordingsDataset(cfg, split, labeller)
    raise DatasetError(f'unknown dataset {cfg.dataset!r}; valid: {", ".join(DATASETS)}')
