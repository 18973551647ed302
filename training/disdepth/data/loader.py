"""The training loader: an endless, resumable stream of batches, the same on resume as uninterrupted.

    epoch, offset = divmod(start_step, batches_per_epoch)        (batches already consumed)
    each epoch    : sampler.set_epoch(epoch) (shuffle seed), worker seeds from seed + 1009 * epoch,
                    the first ``offset`` batches skipped (ResumableSampler.set_start)

One ``DistributedSampler`` shard per process (``data.batch_size`` is per process), incomplete batches dropped.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, DistributedSampler

from disdepth.config import Config
from disdepth.data import DatasetError, build_dataset
from disdepth.distributed import Runtime


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can start mid-epoch (``set_start``), for exact ``--resume``."""

    def __init__(self, dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_start(self, start: int) -> None:
        self.start = start

    def __iter__(self):
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


def build_loaders(cfg: Config, rt: Runtime, labeller=None) -> tuple[DataLoader, ResumableSampler, object]:
    """(train loader, its sampler, held-out test dataset); ``labeller`` as ``build_dataset`` takes it.

    Raises:
        DatasetError: the dataset's (bad root, split or file).
        DatasetError: fewer training images per process than ``data.batch_size``.
    """
    train_set = build_dataset(cfg.data, 'train', labeller=labeller)
    val_set = build_dataset(cfg.data, 'test', labeller=labeller)
    sampler = ResumableSampler(train_set, rt.world_size, rt.rank, cfg.trainer.seed)
    if sampler.num_samples < cfg.data.batch_size:
        raise DatasetError(f'{sampler.num_samples} training images per process < data.batch_size '
                           f'{cfg.data.batch_size}')
    # a private generator: creating a loader iterator must not consume the global RNG, or a resumed
    # run (which creates its iterator at a different moment) would diverge from an uninterrupted one
    gen = torch.Generator()
    loader = DataLoader(train_set, batch_size=cfg.data.batch_size, sampler=sampler, drop_last=True,
                        num_workers=cfg.data.num_workers, generator=gen,
                        pin_memory=rt.device.type == 'cuda')
    return loader, sampler, val_set


def resolve_camera(cfg: Config, train_set) -> bool:
    """Recordings: set ``data.focal_length`` (null) to the recorded camera's at the export size
    (data.eval_width x eval_height), which export.py writes into the model.

    Returns:
        Whether ``cfg`` changed.
    """
    if cfg.data.dataset != 'recordings' or cfg.data.focal_length is not None:
        return False
    cfg.data.focal_length = train_set.focal_length(cfg.data.eval_width, cfg.data.eval_height)
    return True


def batches_per_epoch(sampler: ResumableSampler, batch_size: int) -> int:
    return sampler.num_samples // batch_size


def infinite_batches(loader: DataLoader, sampler: ResumableSampler, start_step: int, seed: int):
    """Yield batches forever from ``start_step`` (batches already consumed), epoch after epoch.

    Worker seeds are a function of (seed, epoch), so a resumed epoch gets the same workers' seeds.
    """
    per_epoch = batches_per_epoch(sampler, loader.batch_size)
    epoch, offset = divmod(start_step, per_epoch)
    while True:
        loader.generator.manual_seed(seed + 1009 * epoch)
        sampler.set_epoch(epoch)
        sampler.set_start(offset * loader.batch_size)
        yield from loader
        epoch, offset = epoch + 1, 0


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors on ``device`` (non-blocking: pinned memory on CUDA); other entries as they are."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
