#!/usr/bin/env python3
"""Export a trained DisDepth student, or a pretrained metric Transformer, to the deployment model file.

    python training/export.py --checkpoint runs/demo/checkpoints/best.pt --output model.onnx \\
        [--height H --width W] [--pt2 model.pt2] [--no-std] [--opset 17] [--tolerance 1e-3]
    python training/export.py --hf depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf --output teacher.onnx \\
        [--height H --width W] [--training-camera NAME]

Writes ONNX (docs/design.md section 3: input ``image`` [1,3,H,W] RGB 0..1, output ``depth`` [1,1,H,W] metres,
``depth_std`` for the bins head unless --no-std, metadata_props for the node), checks it with onnx.checker and
ONNX Runtime against PyTorch on sample images, and optionally a torch.export .pt2 for the torch backend.
--checkpoint: H, W default to the config's data.eval_height/eval_width and must be multiples of 32.
--hf (a hub id or a local folder; disdepth/pretrained_export.py): Depth Anything V2 Metric, GLPN or ZoeDepth;
H, W are rounded to the model's patch multiple (say your camera's size, or a smaller one at its aspect ratio)
and default to the model's own size for its training camera; relative models are refused.
Exit status 2 with a one-line error on bad input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from disdepth.build import load_model
from disdepth.checkpoint import CheckpointError
from disdepth.export import ExportError, export_onnx, export_pt2
from disdepth.hub import ModelSourceError
from disdepth.pretrained_export import TRAINING_CAMERAS, export_pretrained


def export_hf(args: argparse.Namespace):
    """--hf: the pretrained metric model, the rounding said. Returns (model, report) for --pt2."""
    done = export_pretrained(args.hf, args.output, args.height, args.width, camera=args.training_camera,
                             opset=args.opset, tolerance=args.tolerance)
    report, (height, width), family = done.report, done.size, done.family
    if done.requested is None:
        print(f'size: {height}x{width}, the {family.model_type} processor\'s size for its training camera '
              f'(give --height/--width at your camera\'s aspect ratio)')
    elif done.requested != done.size:
        asked_h, asked_w = done.requested
        print(f'size: {asked_h}x{asked_w} rounded to {height}x{width}, multiples of {family.multiple} (the '
              f'{family.model_type} patch); aspect ratio {asked_w / asked_h:.3f} -> {width / height:.3f}')
    metadata = report.metadata
    print(f'wrote {report.path}: {metadata["model_name"]} ({family.model_type}, metric), input 1x3x{height}x{width}, '
          f'depth {family.min_depth:g}..{family.max_depth:g} m, opset {args.opset}, {done.seconds:.1f} s')
    print(f'focal_length {float(metadata["focal_length"]):.2f} px at {height}x{width}, training camera '
          f'{done.camera} ({metadata["focal_length_source"]})')
    return done.model, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--checkpoint', help='student checkpoint (.pt with its .json beside)')
    source.add_argument('--hf', help='pretrained metric depth model: a Hugging Face hub id or a local folder')
    parser.add_argument('--output', required=True, help='ONNX file to write')
    parser.add_argument('--height', type=int, default=None, help='input height (default data.eval_height)')
    parser.add_argument('--width', type=int, default=None, help='input width (default data.eval_width)')
    parser.add_argument('--training-camera', choices=sorted(TRAINING_CAMERAS), default=None,
                        help='--hf: the camera the model was trained on, when its name and max_depth do not say')
    parser.add_argument('--pt2', default=None, help='also write a torch.export .pt2 for the torch backend')
    parser.add_argument('--no-std', action='store_true', help='omit the depth_std output of the bins head')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--tolerance', type=float, default=1e-3, help='max ORT-vs-torch difference (metres)')
    args = parser.parse_args(argv)
    try:
        if args.hf:
            model, report = export_hf(args)
        else:
            if not Path(args.checkpoint).is_file():
                raise ExportError(f'checkpoint not found: {args.checkpoint}')
            model, cfg = load_model(args.checkpoint, device='cpu', expect_task='student')
            height = args.height or cfg.data.eval_height
            width = args.width or cfg.data.eval_width
            report = export_onnx(model, cfg, args.output, height, width, opset=args.opset,
                                 with_std=not args.no_std, tolerance=args.tolerance)
            print(f'wrote {report.path}: {report.metadata["model_name"]}, input 1x3x{height}x{width}, '
                  f'outputs {list(report.outputs)}, opset {args.opset}')
        print(f'ONNX Runtime vs PyTorch on {report.inputs_source}: max abs diff {report.max_abs_diff:.3g} m, '
              f'mean abs diff {report.mean_abs_diff:.3g} m (tolerance {args.tolerance:g} m)')
        if args.pt2:
            diff = export_pt2(model, args.pt2, report.metadata, tolerance=args.tolerance)
            print(f'wrote {args.pt2}: reloaded program vs PyTorch max abs diff {diff:.3g} m')
    except (CheckpointError, ExportError, ModelSourceError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
