#!/usr/bin/env python3
"""Export a trained DisDepth student checkpoint to the deployment model file (docs/design.md section 3).

    python training/export.py --checkpoint runs/demo/checkpoints/best.pt --output model.onnx \\
        [--height H --width W] [--pt2 model.pt2] [--no-std] [--opset 17] [--tolerance 1e-3]

Writes ONNX (input ``image`` [1,3,H,W] RGB 0..1, output ``depth`` [1,1,H,W] metres, ``depth_std`` for
the bins head unless --no-std, metadata_props for the node), checks it with onnx.checker and ONNX Runtime
against PyTorch on the config's test images, and optionally a torch.export .pt2 for the torch backend.
H, W default to the config's data.eval_height/eval_width. Exit status 2 with a one-line error on bad input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from disdepth.build import load_model
from disdepth.checkpoint import CheckpointError
from disdepth.export import ExportError, export_onnx, export_pt2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--checkpoint', required=True, help='student checkpoint (.pt with its .json beside)')
    parser.add_argument('--output', required=True, help='ONNX file to write')
    parser.add_argument('--height', type=int, default=None, help='input height (default data.eval_height)')
    parser.add_argument('--width', type=int, default=None, help='input width (default data.eval_width)')
    parser.add_argument('--pt2', default=None, help='also write a torch.export .pt2 for the torch backend')
    parser.add_argument('--no-std', action='store_true', help='omit the depth_std output of the bins head')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--tolerance', type=float, default=1e-3, help='max ORT-vs-torch difference (metres)')
    args = parser.parse_args(argv)
    try:
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
    except (CheckpointError, ExportError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
