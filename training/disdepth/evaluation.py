"""Evaluation loop shared by training/evaluate.py, training's validation and the demo.

Protocol of arXiv 2404.16386 section 4.1: metrics per image over the dataset's mask (valid depth,
Garg/Eigen crop), averaged over images (``disdepth.metrics``). Optional flip averaging, as BTS's
``--post_process`` / AdaBins: depth = (f(x) + flip(f(flip(x)))) / 2.
Previews: one PNG per image, a 2x2 grid [image | ground truth] over [prediction | error] (the 2x2 keeps
KITTI's 352x1216 frames readable); depth in the perceptual Turbo colormap over the SAME fixed range
[0, max_depth] for ground truth and prediction; error = |p - g| / g in Magma over [0, 0.5]; black =
no ground truth (``depth_kd_ros.colorize``, the node's depth/colored colouring).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
from tqdm import tqdm

from depth_kd_ros.colorize import colorize
from disdepth.metrics import MetricAverager, compute_metrics

ERROR_RANGE = 0.5  # relative error shown as the top of the error colormap


def _to_numpy(depth) -> np.ndarray:
    if isinstance(depth, torch.Tensor):
        return depth.detach().float().cpu().numpy()
    return np.asarray(depth, np.float32)


def predict(predict_fn: Callable, image: torch.Tensor, flip_average: bool = False,
            intrinsics: torch.Tensor | None = None) -> np.ndarray:
    """Run ``predict_fn`` on image [B,3,H,W] (0..1) -> depth float32 numpy [B,1,H,W] metres; with ``intrinsics``
    K [B,3,3] (pixels at H x W) as ``predict_fn(image, K)``, the flipped image with cx mirrored (W - 1 - cx).

    Raises:
        ValueError: the prediction is not [B,1,H,W].
    """
    def run(image: torch.Tensor, intrinsics: torch.Tensor | None) -> np.ndarray:
        return _to_numpy(predict_fn(image) if intrinsics is None else predict_fn(image, intrinsics))

    depth = run(image, intrinsics)
    if flip_average:
        mirrored = None
        if intrinsics is not None:
            mirrored = intrinsics.clone()
            mirrored[:, 0, 2] = image.shape[-1] - 1 - intrinsics[:, 0, 2]
        depth = 0.5 * (depth + run(torch.flip(image, dims=[-1]), mirrored)[..., ::-1])
    b, _, h, w = image.shape
    if depth.shape != (b, 1, h, w):
        raise ValueError(f'predict_fn returned shape {depth.shape}, expected {(b, 1, h, w)} (depth at input size)')
    return depth


def preview(image: np.ndarray, gt: np.ndarray, pred: np.ndarray, mask: np.ndarray, max_depth: float) -> np.ndarray:
    """BGR uint8 [2H,2W,3]: image [3,H,W] 0..1, gt/pred [H,W] metres, mask [H,W] bool (see module doc)."""
    rgb = np.ascontiguousarray((np.clip(image.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)[..., ::-1])
    error = np.abs(pred - gt) / np.where(mask, gt, 1)
    panels = [(rgb, 'image'), (colorize(gt, 0.0, max_depth), 'ground truth'),
              (colorize(pred, 0.0, max_depth), 'prediction'),
              (colorize(error.astype(np.float32), 0.0, ERROR_RANGE, 'magma', valid=mask), f'|p-g|/g, 0..{ERROR_RANGE}')]
    font = float(np.clip(image.shape[2] / 800, 0.35, 1.0))  # readable from 320 to 1216 px wide
    for panel, label in panels:
        cv2.putText(panel, label, (4, int(24 * font) + 2), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([np.concatenate([a[0], b[0]], 1) for a, b in (panels[:2], panels[2:])], 0)


def evaluate(predict_fn: Callable, dataset, *, min_depth: Optional[float] = None, max_depth: Optional[float] = None,
             flip_average: bool = False, batch_size: int = 1, preview_dir=None, num_previews: int = 0,
             progress: bool = False, with_camera: bool = False) -> dict:
    """Evaluate ``predict_fn`` on ``dataset`` (items as ``disdepth.data.build_dataset``).

    Writes ``num_previews`` PNGs to ``preview_dir`` (created) if given.
    Args:
        predict_fn: image torch float32 [B,3,H,W] 0..1 on CPU -> depth [B,1,H,W] metres (torch or numpy); it
            moves data to its device itself. With ``with_camera``, ``predict_fn(image, K)``: K float32 [B,3,3],
            each item's intrinsics (pixels at H x W).
        min_depth, max_depth: metres, the clipping range of the predictions; default the dataset's
            ``cfg.min_depth``/``cfg.max_depth`` (every disdepth dataset has ``cfg``), else 1e-3 and 80.
    Returns:
        The averaged metrics (``disdepth.metrics.METRIC_KEYS``) plus ``num_images``.
    Raises:
        ValueError: an image has no valid pixel or the prediction has the wrong shape.
    """
    data_cfg = getattr(dataset, 'cfg', None)
    if min_depth is None:
        min_depth = getattr(data_cfg, 'min_depth', 1e-3)
    if max_depth is None:
        max_depth = getattr(data_cfg, 'max_depth', 80.0)
    averager = MetricAverager()
    if preview_dir is not None and num_previews > 0:
        Path(preview_dir).mkdir(parents=True, exist_ok=True)
    indices = range(len(dataset))
    if progress:
        indices = tqdm(indices, desc='evaluate', unit='img')
    batch: list = []
    written = 0
    with torch.no_grad():
        for i in indices:
            batch.append(dataset[i])
            if len(batch) < batch_size and i != len(dataset) - 1:
                continue
            image = torch.stack([item['image'] for item in batch])
            intrinsics = torch.stack([item['K'] for item in batch]) if with_camera else None
            depth = predict(predict_fn, image, flip_average, intrinsics)
            for item, pred in zip(batch, depth, strict=True):
                gt, mask = item['depth'][0].numpy(), item['mask'][0].numpy()
                try:
                    averager.update(compute_metrics(pred[0], gt, mask, min_depth, max_depth))
                except ValueError as err:
                    raise ValueError(f'{item["name"]}: {err}') from None
                if preview_dir is not None and written < num_previews:
                    panel = preview(item['image'].numpy(), gt, np.clip(pred[0], min_depth, max_depth), mask,
                                    max_depth)
                    name = Path(str(item['name'])).stem.replace(':', '_')
                    cv2.imwrite(str(Path(preview_dir) / f'{written:03d}_{name}.png'), panel)
                    written += 1
            batch = []
    return averager.compute()


def predictor(model: torch.nn.Module, device: torch.device) -> Callable:
    """``predict_fn`` for ``evaluate`` over a torch model: image [B,3,H,W] 0..1 -> depth [B,1,H,W] metres."""
    @torch.no_grad()
    def predict(image):
        return model(torch.as_tensor(image, dtype=torch.float32).to(device))['depth'].float().cpu()
    return predict


def validate(model: torch.nn.Module, dataset, device: torch.device, batch_size: int = 1) -> dict:
    """Standard metrics (``disdepth.metrics`` keys) of ``model`` on ``dataset``; restores train mode."""
    was_training = model.training
    model.eval()
    try:
        return evaluate(predictor(model, device), dataset, batch_size=batch_size)
    finally:
        model.train(was_training)
