"""Export a trained student to the deployment contract: ONNX with metadata, and a torch.export (.pt2).

Contract: docs/design.md section 3,
read back by ``depth_kd_ros.model_file``; checked like timm's ``onnx_export(check_forward=True)``:

    image [1,3,H,W] RGB 0..1 -> student (ImageNet normalisation inside) -> depth [1,1,H,W] m[, depth_std]
    pass  <=>  max |ORT(image) - torch(image)| <= tolerance (metres) on real test images

ONNX comes from the TorchScript exporter at an exact opset (17 by default, the newest TensorRT 8.6 on
JetPack 6.0 parses): with torch 2.13 and onnxscript 0.7.2 the torch.export-based exporter failed to
down-convert this graph from opset 18 (Pad, Resize axes) and left it at 18, and took 9-30 s instead of 1-2 s.
The .pt2 uses torch.export of the same wrapper, so both artifacts compute the same function.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

from depth_kd_ros.io.atomic_file import atomic_path
from depth_kd_ros.model_file import EXPORT_VERSION, ModelFileError, read_model_info
from disdepth.build import build_labeller
from disdepth.config import Config
from disdepth.data import build_dataset
from disdepth.data.nyu import FX
from disdepth.data.synthetic import PRESETS

STRIDE = 32  # the backbone's deepest reduction: H and W must divide by it for the decoder's skips to align
# KITTI: P_rect_02 of 2011_09_26 (the focal most Eigen-split lines carry) at the KB crop, 1216 px wide;
# the other drives' 707..719 px differ by < 2 %. NYU: disdepth.data.nyu.FX at the native 640 px width.
KITTI_CAMERA = (721.5377, 1216)
NYU_WIDTH = 640


class ExportError(ValueError):
    """The model cannot be exported as asked (size, architecture) or the exported file fails its checks."""


class ExportWrapper(nn.Module):
    """image [1,3,H,W] RGB 0..1 -> depth [1,1,H,W] metres, or (depth, depth_std) when ``with_std``."""

    def __init__(self, model: nn.Module, with_std: bool):
        super().__init__()
        self.model, self.with_std = model, with_std

    def forward(self, image: torch.Tensor):
        out = self.model(image)
        return (out['depth'], out['depth_std']) if self.with_std else out['depth']


@dataclass
class ExportReport:
    path: Path
    outputs: tuple[str, ...]
    max_abs_diff: float  # metres, worst output and pixel over the check images
    mean_abs_diff: float  # metres
    inputs_source: str  # which images the parity check used
    metadata: dict


def check_size(height: int, width: int) -> None:
    """Raise ExportError unless H and W are positive multiples of ``STRIDE`` (32)."""
    if height <= 0 or width <= 0 or height % STRIDE or width % STRIDE:
        near_h, near_w = (max(STRIDE, round(v / STRIDE) * STRIDE) for v in (height, width))
        raise ExportError(f'export size {height}x{width} is not possible: height and width must be positive '
                          f'multiples of {STRIDE} (the backbone stride), e.g. {near_h}x{near_w}')


def focal_length(cfg: Config, height: int, width: int) -> float:
    """Focal (px) of the training camera at the model's input size, for the node's focal scaling.

    Every protocol keeps the field of view and scales the focal with the width: synthetic presets by
    construction (``disdepth.data.synthetic.PRESETS``), KITTI from ``KITTI_CAMERA``, NYU from its module.
    ``data.focal_length`` (px at eval_width x eval_height; a recordings run sets it from camera_info P) comes
    first, scaled as the node scales it: f * sqrt(W H / (W_eval H_eval)).
    Raises ExportError: a recordings config without data.focal_length.
    """
    dataset = cfg.data.dataset
    if cfg.data.focal_length is not None:
        return cfg.data.focal_length * math.sqrt(height * width / (cfg.data.eval_height * cfg.data.eval_width))
    if dataset == 'recordings':
        raise ExportError('the checkpoint\'s config has no data.focal_length: the recordings run that wrote it '
                          'sets it from the camera_info; set data.focal_length (px at eval size) by hand')
    if dataset.startswith('synthetic_'):
        return float(PRESETS[dataset.split('_', 1)[1]]['fx_w'] * width)
    if dataset == 'nyu':
        return FX * width / NYU_WIDTH
    focal, native_width = KITTI_CAMERA
    return focal * width / native_width


def build_metadata(cfg: Config, height: int, width: int, outputs: tuple[str, ...]) -> dict[str, str]:
    """metadata_props of docs/design.md section 3 (all strings). Depth range: the model head's (metres)."""
    m = cfg.model
    name = f"disdepth_{m.backbone}{'_lgconv' if m.lgconv.enabled else ''}_{m.head}"
    return {'input_height': str(height), 'input_width': str(width), 'min_depth': repr(float(m.min_depth)),
            'max_depth': repr(float(m.max_depth)), 'focal_length': repr(focal_length(cfg, height, width)),
            'model_name': name, 'training_dataset': cfg.data.dataset, 'export_version': EXPORT_VERSION,
            'outputs': ','.join(outputs)}


def sample_inputs(cfg: Config, height: int, width: int, count: int = 4) -> tuple[torch.Tensor, str]:
    """Up to ``count`` test images [N,3,H,W] RGB 0..1 from the config's test split, resized bilinearly to
    (H, W) when the split's size differs; seeded uniform noise only when the dataset cannot be built."""
    try:
        dataset = build_dataset(cfg.data, 'test', labeller=build_labeller(cfg))
        images = torch.stack([torch.as_tensor(dataset[i]['image']) for i in range(min(count, len(dataset)))])
        source = f'{len(images)} {cfg.data.dataset} test images'
    except (ImportError, OSError, ValueError, KeyError, IndexError, RuntimeError) as exc:
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(count, 3, height, width, generator=generator)
        return images, f'{count} random images (test dataset unavailable: {type(exc).__name__}: {exc})'
    if images.shape[-2:] != (height, width):
        images = F.interpolate(images, size=(height, width), mode='bilinear', align_corners=False)
    return images.float(), source


def _probe(wrapper: ExportWrapper, height: int, width: int) -> None:
    try:
        with torch.no_grad():
            wrapper(torch.zeros(1, 3, height, width))
    except (RuntimeError, ValueError) as exc:
        raise ExportError(f'the model cannot take input {height}x{width}: {exc}') from exc


def _outputs(model: nn.Module, with_std: bool) -> tuple[str, ...]:
    with torch.no_grad():
        has_std = 'depth_std' in model(torch.zeros(1, 3, STRIDE, STRIDE))
    return ('depth', 'depth_std') if (with_std and has_std) else ('depth',)


def export_onnx(model: nn.Module, cfg: Config, output: str | Path, height: int, width: int, *, opset: int = 17,
                with_std: bool = True, tolerance: float = 1e-3, check_images: int = 4) -> ExportReport:
    """Export a student ``model`` (forward(image 0..1) -> {'depth'[, 'depth_std']}) to ``output`` and verify it
    on the config's test images (:func:`write_checked_onnx`).

    Raises:
        ExportError: size not a multiple of 32, model fails at that size, or parity above ``tolerance`` m.
    """
    check_size(height, width)
    model.eval()
    outputs = _outputs(model, with_std)
    wrapper = ExportWrapper(model, len(outputs) == 2).eval()  # eval: the exporter restores this mode
    images, source = sample_inputs(cfg, height, width, check_images)
    return write_checked_onnx(wrapper, output, build_metadata(cfg, height, width, outputs), images, source,
                              opset=opset, tolerance=tolerance)


def write_checked_onnx(wrapper: nn.Module, output: str | Path, metadata: dict[str, str], images: torch.Tensor,
                       source: str, *, opset: int = 17, tolerance: float = 1e-3) -> ExportReport:
    """Export ``wrapper`` (image [1,3,H,W] RGB 0..1 -> depth [1,1,H,W] m, or (depth, depth_std)) with
    ``metadata`` (its ``input_height``, ``input_width`` and ``outputs`` give the graph's static shapes and names)
    and check it on ``images`` [N,3,H,W] (described by ``source``) against PyTorch.

    Writes to a temporary file and moves it to ``output`` only after onnx.checker, the contract reader
    and the ORT-vs-torch parity check pass, so a failed export leaves no file behind.
    Raises:
        ExportError: the model fails at that size, the file breaks the contract, or parity above ``tolerance`` m.
    """
    height, width = int(metadata['input_height']), int(metadata['input_width'])
    outputs = tuple(metadata['outputs'].split(','))
    _probe(wrapper, height, width)
    output = Path(output)
    with atomic_path(output, suffix='.onnx') as tmp_path:  # renamed over ``output`` only if every check passes
        tmp = str(tmp_path)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # TorchScript-exporter deprecation notice (see module docstring)
            torch.onnx.export(wrapper, (torch.zeros(1, 3, height, width),), tmp, input_names=['image'],
                              output_names=list(outputs), opset_version=opset, dynamo=False)
        proto = onnx.load(tmp)
        # the tracer keeps shape arithmetic for the final resize (out_size = image.shape[-2:]), leaving the
        # output dims symbolic; the input is static, so state the contract's static output shape
        for value_info in proto.graph.output:
            dims = value_info.type.tensor_type.shape.dim
            for dim, size in zip(dims, (1, 1, height, width), strict=True):
                dim.dim_value = size
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        try:
            onnx.checker.check_model(proto, full_check=True)
            onnx.save(proto, tmp)
            read_model_info(tmp)  # the runtime's own contract check (names, static shapes, metadata)
        except (onnx.checker.ValidationError, ModelFileError) as exc:
            raise ExportError(f'exported ONNX fails its checks: {exc}') from exc
        session = ort.InferenceSession(tmp, providers=['CPUExecutionProvider'])
        diffs = []
        for image in images:
            with torch.no_grad():
                ref = wrapper(image[None])
            ref = ref if isinstance(ref, tuple) else (ref,)
            got = session.run(list(outputs), {'image': image[None].numpy()})
            diffs += [np.abs(g - r.numpy()).ravel() for g, r in zip(got, ref, strict=True)]
        diff = np.concatenate(diffs)
        report = ExportReport(output, outputs, float(diff.max()), float(diff.mean()), source, metadata)
        if not math.isfinite(report.max_abs_diff) or report.max_abs_diff > tolerance:
            raise ExportError(f'ONNX Runtime differs from PyTorch by {report.max_abs_diff:.3g} m (max) > '
                              f'tolerance {tolerance:g} m on {source}; the ONNX file was not written')
    return report


def export_pt2(model: nn.Module, path: str | Path, metadata: dict, *, tolerance: float = 1e-3) -> float:
    """torch.export the same wrapper to ``path`` with ``metadata.json``; return the max reload diff (m).

    Raises:
        ExportError: torch.export fails, or the reloaded program differs by more than ``tolerance``.
    """
    height, width = int(metadata['input_height']), int(metadata['input_width'])
    outputs = tuple(metadata['outputs'].split(','))
    model.eval()
    wrapper = ExportWrapper(model, len(outputs) == 2).eval()
    example = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    try:
        program = torch.export.export(wrapper, (example,))
    except Exception as exc:  # torch.export raises many internal error types for untraceable code
        raise ExportError(f'torch.export failed: {type(exc).__name__}: {exc}') from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path), extra_files={'metadata.json': json.dumps(metadata, indent=2)})
    with torch.no_grad():
        ref, got = wrapper(example), torch.export.load(str(path)).module()(example)
    pairs = zip(got, ref, strict=True) if isinstance(ref, tuple) else [(got, ref)]
    diff = max(float((g - r).abs().max()) for g, r in pairs)
    if diff > tolerance:
        path.unlink()
        raise ExportError(f'reloaded .pt2 differs from PyTorch by {diff:.3g} m > tolerance {tolerance:g} m')
    return diff
