#!/usr/bin/env python3
"""Evaluate a checkpoint or an exported ONNX model on a dataset (docs/design.md section 3).

    python training/evaluate.py --config FILE (--checkpoint PATH | --onnx PATH [--focal-scaling])
        [section.key=value ...] [--flip-average] [--num-previews N]

Protocol of arXiv 2404.16386 section 4.1 (``disdepth.evaluation``, ``disdepth.metrics``): metrics per
image over the dataset's mask, averaged. The dataset is ``data.*`` of --config (plus overrides), test
split. Prints the metric table and writes ``output_dir/metrics.json`` (abs_rel, sq_rel, rmse, rmse_log,
log10, silog, d1, d2, d3, num_images; and num_without_ground_truth, without_ground_truth: how many and
which frames of the split were left out for lack of ground truth, e.g. 45 of KITTI Eigen's 697) and
``output_dir/previews/*.png``.

--onnx evaluates what is deployed: the node's own frame path (depth_kd_ros.frames, DepthPipeline) with the
ONNX Runtime backend on the CPU and the node's default parameters, on each image as a camera delivers it
(uint8 RGB: the dataset's 0..1 image rounded to 8 bits). So the model file must follow the deployment contract
(docs/design.md section 3, metadata included), the image is resized to the model's input as the node does it
(area when shrinking, else bilinear) and the depth resized back bilinearly, invalid depth (<= 0) is NaN (the
metrics then clip it to min_depth). No camera is passed, so the depth is NOT rescaled for a changed focal
length (the node's ``focal_scaling`` does that at run time): evaluate at the camera the model was trained for.
--focal-scaling passes each image's camera (the dataset's K at the image size), so depth is scaled by
f_camera / f_model as the node scales it on that camera: for a model trained on another camera (a pretrained model
from export.py --hf, whose focal_length is its training camera's) on your recording. On the model's own camera
the factor is 1.
Exit status 2 with a one-line error on bad input (a missing or broken model, config or dataset).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from depth_kd_ros.backends import BackendError
from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.frames import FramePath
from depth_kd_ros.params import NodeParams
from depth_kd_ros.pipeline import load_pipeline
from disdepth.build import build_labeller
from disdepth.checkpoint import CheckpointError
from disdepth.config import ConfigError, load_config
from disdepth.data import DatasetError, build_dataset
from disdepth.evaluation import evaluate
from disdepth.metrics import format_table


def onnx_predictor(path: str, focal_scaling: bool = False):
    """``predict_fn`` over an exported model run as the node runs it (module docstring): image [B,3,H,W] 0..1
    [, K [B,3,3] pixels at H x W with ``focal_scaling``] -> depth numpy [B,1,H,W] metres (NaN where the model's
    depth is not positive), scaled by f_camera / f_model with ``focal_scaling`` (docs/design.md section 3).

    Raises:
        FileNotFoundError: no file at ``path``.
        ModelFileError: the file breaks the model-file contract (ValueError).
        BackendError: ONNX Runtime cannot load or run it.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f'ONNX model not found: {path}')
    frames = FramePath(load_pipeline(NodeParams(model_path=path, backend='onnxruntime', device='cpu',
                                                focal_scaling=focal_scaling)))

    def predict(image, intrinsics=None) -> np.ndarray:
        image = np.asarray(image, np.float32)
        rgb = np.rint(np.clip(image.transpose(0, 2, 3, 1), 0.0, 1.0) * 255.0).astype(np.uint8)  # [B,H,W,3]
        height, width = rgb.shape[1:3]
        cameras = ([None] * len(rgb) if intrinsics is None else
                   [CameraModel.from_k(np.asarray(k, np.float64).ravel(), width, height) for k in intrinsics])
        return np.stack([frames.run(np.ascontiguousarray(frame), camera, ['depth']).depth
                         for frame, camera in zip(rgb, cameras, strict=True)])[:, None]

    return predict


def checkpoint_predictor(path: str):
    """``predict_fn`` over a training checkpoint (student or teacher) via ``disdepth.build.load_model``."""
    import torch

    from disdepth.build import load_model
    from disdepth.evaluation import predictor

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model, _ = load_model(path, device=device)
    return predictor(model, device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', required=True, help='YAML config giving data.* and output_dir')
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument('--checkpoint', help='training checkpoint (.pt with its .json beside)')
    model.add_argument('--onnx', help='exported ONNX model file')
    parser.add_argument('--focal-scaling', action='store_true',
                        help='--onnx: scale depth to each image\'s camera as the node does (a model trained on '
                             'another camera, e.g. a pretrained one from export.py --hf)')
    parser.add_argument('--flip-average', action='store_true', help='average with the flipped image')
    parser.add_argument('--num-previews', type=int, default=4, help='preview PNGs to write')
    parser.add_argument('overrides', nargs='*', help='dotted section.key=value overrides')
    args = parser.parse_args(argv)
    if args.focal_scaling and not args.onnx:
        parser.error('--focal-scaling needs --onnx (the model file carries the focal length it was trained for)')
    try:
        cfg = load_config(args.config, args.overrides)
        dataset = build_dataset(cfg.data, 'test', labeller=build_labeller(cfg))
        predict_fn = (onnx_predictor(args.onnx, args.focal_scaling) if args.onnx
                      else checkpoint_predictor(args.checkpoint))
        out_dir = Path(cfg.output_dir)
        metrics = evaluate(predict_fn, dataset, min_depth=cfg.data.min_depth, max_depth=cfg.data.max_depth,
                           flip_average=args.flip_average, preview_dir=out_dir / 'previews',
                           num_previews=args.num_previews, progress=cfg.trainer.progress,
                           with_camera=args.focal_scaling)
    except (ConfigError, DatasetError, CheckpointError, BackendError, FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    left_out = list(getattr(dataset, 'without_ground_truth', []))  # split lines with depth "None" (KITTI)
    metrics.update(num_without_ground_truth=len(left_out), without_ground_truth=left_out)
    # recordings: what the metrics compare against (the depth topic, or agreement with the teacher)
    metrics.update(getattr(dataset, 'evaluation_info', {}))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'metrics.json').write_text(json.dumps(metrics, indent=2) + '\n')
    print(format_table({Path(args.onnx or args.checkpoint).name: metrics}))
    if 'reference_source' in metrics:
        print(f'against the {metrics["reference_source"]}')
    if left_out:
        print(f'frames without ground truth, left out: {len(left_out)} (listed in metrics.json)')
    print(f'wrote {out_dir / "metrics.json"} and {min(args.num_previews, metrics["num_images"])} previews '
          f'in {out_dir / "previews"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
