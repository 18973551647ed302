#!/usr/bin/env python3
"""Evaluate a checkpoint or an exported ONNX model on a dataset (docs/design.md section 3).

    python training/evaluate.py --config FILE (--checkpoint PATH | --onnx PATH) [section.key=value ...]
        [--flip-average] [--num-previews N]

Protocol of arXiv 2404.16386 section 4.1 (``disdepth.evaluation``, ``disdepth.metrics``): metrics per
image over the dataset's mask, averaged. The dataset is ``data.*`` of --config (plus overrides), test
split. Prints the metric table and writes ``output_dir/metrics.json`` (abs_rel, sq_rel, rmse, rmse_log,
log10, silog, d1, d2, d3, num_images; and num_without_ground_truth, without_ground_truth: how many and
which frames of the split were left out for lack of ground truth, e.g. 45 of KITTI Eigen's 697) and
``output_dir/previews/*.png``.

--onnx runs ONNX Runtime (CPU) on the model-file contract: input ``image`` float32 [1,3,h,w] RGB 0..1,
output ``depth`` [1,1,h,w] metres. If the dataset's images are not h x w they are resized to it
(area/bilinear) and the depth is resized back bilinearly; the depth values are NOT rescaled for the
changed focal length (the node's ``focal_scaling`` does that at run time), so evaluate at the camera
the model was trained for. Exit status 1 with a one-line error on bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from disdepth.checkpoint import CheckpointError  # noqa: E402
from disdepth.config import ConfigError, load_config  # noqa: E402
from disdepth.data import DatasetError, build_dataset  # noqa: E402
from disdepth.evaluation import evaluate  # noqa: E402
from disdepth.metrics import format_table  # noqa: E402


def onnx_predictor(path: str):
    """``predict_fn`` over an ONNX model: image [B,3,H,W] 0..1 -> depth numpy [B,1,H,W] metres.

    Raises FileNotFoundError, or ValueError if the file is not an ONNX model with an ``image`` input
    and a ``depth`` output.
    """
    import onnxruntime as ort

    if not Path(path).is_file():
        raise FileNotFoundError(f'ONNX model not found: {path}')
    try:
        session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    except Exception as err:  # ORT raises its own pybind exception types for corrupt files
        raise ValueError(f'{path}: not a loadable ONNX model ({err})') from None
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    if 'image' not in inputs or 'depth' not in outputs:
        raise ValueError(f'{path}: expected input "image" and output "depth", got {list(inputs)} -> {outputs}')
    shape = inputs['image'].shape
    fixed = tuple(shape[2:]) if all(isinstance(d, int) for d in shape[2:]) else None

    def predict(image) -> np.ndarray:
        image = np.asarray(image, np.float32)
        b, _, height, width = image.shape
        h, w = fixed or (height, width)
        out = np.empty((b, 1, height, width), np.float32)
        for i in range(b):
            x = image[i].transpose(1, 2, 0)
            if (h, w) != (height, width):
                shrink = h < height and w < width
                x = cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            depth = session.run(['depth'], {'image': np.ascontiguousarray(x.transpose(2, 0, 1))[None]})[0][0, 0]
            if depth.shape != (height, width):
                depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_LINEAR)
            out[i, 0] = depth
        return out

    return predict


def checkpoint_predictor(path: str):
    """``predict_fn`` over a training checkpoint (student or teacher) via ``disdepth.checkpoint.load_model``."""
    import torch

    from disdepth.checkpoint import load_model
    from disdepth.trainer import predictor

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model, _ = load_model(path, device=device)
    return predictor(model, device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', required=True, help='YAML config giving data.* and output_dir')
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument('--checkpoint', help='training checkpoint (.pt with its .json beside)')
    model.add_argument('--onnx', help='exported ONNX model file')
    parser.add_argument('--flip-average', action='store_true', help='average with the flipped image')
    parser.add_argument('--num-previews', type=int, default=4, help='preview PNGs to write')
    parser.add_argument('overrides', nargs='*', help='dotted section.key=value overrides')
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        dataset = build_dataset(cfg.data, 'test', teacher=cfg.teacher)
        predict_fn = onnx_predictor(args.onnx) if args.onnx else checkpoint_predictor(args.checkpoint)
        out_dir = Path(cfg.output_dir)
        metrics = evaluate(predict_fn, dataset, min_depth=cfg.data.min_depth, max_depth=cfg.data.max_depth,
                           flip_average=args.flip_average, preview_dir=out_dir / 'previews',
                           num_previews=args.num_previews, progress=cfg.trainer.progress)
    except (ConfigError, DatasetError, CheckpointError, FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
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
