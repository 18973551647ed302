"""Export a pretrained metric Transformer to the model file contract, so the node serves it on day one.

Contract: docs/design.md section 3 (the same file a distilled student is). Families: Depth Anything V2 Metric
(Indoor: Hypersim, Outdoor: Virtual KITTI 2; arXiv 2406.09414), GLPN (NYU, KITTI; arXiv 2201.07436) and
ZoeDepth (NYU, KITTI; arXiv 2302.12288; not NYU+KITTI, whose head is picked per image), from a hub id or a
local folder:

    image [1,3,H,W] RGB 0..1 -> [ZoeDepth: reflect pad p = int(3 sqrt(n / 2)) per side, resize to H x W]
        -> (image - mean) / std -> model -> depth, bilinear to H x W [ZoeDepth: to the padded size, crop]
        -> clamp(min_depth, max_depth)                                               depth [1,1,H,W] metres

mean/std: the model's image processor's (preprocessor_config.json, else the family's). The padding is the one
transformers' ZoeDepth image processor adds and its post-processing removes. H and W are multiples of the
model's patch (14 for Depth Anything; 32 for GLPN and ZoeDepth, whose processors round to 32) next to the size
asked, keeping its aspect ratio (``round_to_multiple``); without a size, the size the model's own processor gives
its training camera's images.

focal_length (metadata, px at H x W) is the training camera's, scaled as the node scales a camera to the
model input (docs/design.md section 3, "Metric scale on another camera"): f_train * sqrt(H W / (H_t W_t)),
f_train and H_t x W_t from ``TRAINING_CAMERAS``. At the model's own input size this equals the focal its
training images had.

Relative models (DPT, Depth Anything without the metric head) are refused: their output is inverse depth up to
an unknown scale and shift, and the node publishes metres.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForDepthEstimation

from depth_kd_ros.model_file import EXPORT_VERSION
from disdepth.config import Config
from disdepth.data.nyu import FX as NYU_FX
from disdepth.distill.teacher import image_normalisation
from disdepth.export import (
    KITTI_CAMERA,
    NYU_WIDTH,
    ExportError,
    ExportReport,
    ExportWrapper,
    sample_inputs,
    write_checked_onnx,
)
from disdepth.hub import LOCAL_FOLDER, load_pretrained

METRIC_MODELS = 'Depth Anything V2 Metric (Indoor, Outdoor), GLPN (NYU, KITTI) or ZoeDepth (NYU, KITTI)'


@dataclass(frozen=True)
class TrainingCamera:
    """The camera of a model's training images: focal (px) at its whole image, ``height`` x ``width``."""

    focal: float
    height: int
    width: int
    source: str  # where the numbers come from
    indoor: bool  # which synthetic scenes the parity check uses

    def focal_at(self, height: int, width: int) -> float:
        """Focal (px) of this camera's whole image resized to ``height`` x ``width``, as the node measures a
        camera at the model input: f * sqrt(sx * sy) (depth_kd_ros/pipeline.py)."""
        return self.focal * math.sqrt(height * width / (self.height * self.width))


TRAINING_CAMERAS = {
    # fov_x = pi/3 at 1024x768 (ml-hypersim evermotion_dataset/_vray_user_params.py): 512 / tan(30 deg) = 886.81 px,
    # the focal Depth-Anything-V2 metric_depth/dataset/hypersim.py uses
    'hypersim': TrainingCamera(886.81, 768, 1024, 'Hypersim: 60 deg horizontal FOV at 1024x768', True),
    # Virtual KITTI 2 (arXiv 2001.10773) textgt intrinsic.txt: fx = fy = 725.0087, cx 620.5, cy 187 at 1242x375
    'vkitti2': TrainingCamera(725.0087, 375, 1242, 'Virtual KITTI 2: intrinsic.txt fx 725.0087 at 1242x375',
                              False),
    # NYU Depth v2 toolbox camera_params.m, fx_rgb at 640x480 (disdepth.data.nyu)
    'nyu': TrainingCamera(NYU_FX, 480, NYU_WIDTH, f'NYU Depth v2: camera_params.m fx_rgb {NYU_FX} at 640x480', True),
    # KITTI P_rect_02 of 2011_09_26 at the KB crop 352x1216 the models see (disdepth.export.KITTI_CAMERA)
    'kitti': TrainingCamera(KITTI_CAMERA[0], 352, KITTI_CAMERA[1],
                            f'KITTI: P_rect_02 (2011_09_26) {KITTI_CAMERA[0]} at the 352x1216 crop', False),
}
# Depth Anything V2 metric_depth/train.py --min-depth 0.001; GLPN (arXiv 2201.07436 section 4.1): 1e-3 m
MIN_DEPTH = 1e-3
DEPTH_ANYTHING_SIZE = 518  # its processor: shorter side 518 (metric_depth/dataset/*.py Resize lower_bound)
ZOEDEPTH_SIZE = (384, 512)  # its processor: fit to 384x512 keeping the aspect, scaling as little as possible


@dataclass(frozen=True)
class MetricFamily:
    """What the export needs to know about one pretrained metric model (read from its config)."""

    model_type: str
    multiple: int  # H and W must be multiples of this (the patch)
    min_depth: float  # metres
    max_depth: float  # metres
    cameras: dict[str, tuple[str, ...]]  # training camera -> words of a hub id or folder name that say it
    by_max_depth: dict[float, str]  # training camera when the name says none
    pad: bool  # ZoeDepth's reflect padding

    def native_size(self, camera: TrainingCamera) -> tuple[int, int]:
        """(H, W) the model's own image processor gives an image of ``camera`` (before rounding)."""
        if self.model_type == 'depth_anything':
            scale = DEPTH_ANYTHING_SIZE / min(camera.height, camera.width)
        elif self.model_type == 'zoedepth':
            scale_h, scale_w = ZOEDEPTH_SIZE[0] / camera.height, ZOEDEPTH_SIZE[1] / camera.width
            scale = scale_w if abs(1 - scale_w) < abs(1 - scale_h) else scale_h
        else:  # GLPN keeps the image's size
            scale = 1.0
        return round(camera.height * scale), round(camera.width * scale)


class RelativeModelError(ExportError):
    """The model predicts relative depth, which the node cannot serve."""


def metric_family(hf_config, source: str) -> MetricFamily:
    """The metric family of a transformers config.

    Raises:
        RelativeModelError: DPT, or Depth Anything without the metric head (one line saying why).
        ExportError: another model type, or ZoeDepth with several metric heads (its head is chosen per image).
    """
    model_type = hf_config.model_type
    if model_type == 'dpt' or (model_type == 'depth_anything'
                               and getattr(hf_config, 'depth_estimation_type', 'relative') != 'metric'):
        kind = 'DPT' if model_type == 'dpt' else 'Depth Anything without the metric head'
        raise RelativeModelError(
            f'--hf={source!r} is a relative depth model ({kind}): it predicts inverse depth up to an unknown scale '
            'and shift, but the node publishes depth in metres (depth images, point clouds, focal scaling to your '
            f'camera); give a metric model: {METRIC_MODELS}')
    if model_type == 'depth_anything':
        return MetricFamily(model_type, hf_config.patch_size, MIN_DEPTH, float(hf_config.max_depth),
                            {'hypersim': ('indoor', 'hypersim'), 'vkitti2': ('outdoor', 'vkitti')},
                            {20.0: 'hypersim', 80.0: 'vkitti2'}, pad=False)
    nyu_or_kitti = {'nyu': ('nyu',), 'kitti': ('kitti',)}
    if model_type == 'glpn':
        return MetricFamily(model_type, 32, MIN_DEPTH, float(hf_config.max_depth), nyu_or_kitti,
                            {10.0: 'nyu', 80.0: 'kitti'}, pad=False)
    if model_type == 'zoedepth':
        if len(hf_config.bin_configurations) > 1:  # transformers picks the head with .item(): fixed when traced
            raise ExportError(f'--hf={source!r} is ZoeDepth with {len(hf_config.bin_configurations)} metric heads '
                              '(e.g. NYU+KITTI), which picks one per image at run time; a static graph cannot; give '
                              'a single-head model (Intel/zoedepth-nyu or Intel/zoedepth-kitti)')
        (bins,) = hf_config.bin_configurations
        return MetricFamily(model_type, 32, float(bins['min_depth']), float(bins['max_depth']), nyu_or_kitti,
                            {10.0: 'nyu', 80.0: 'kitti'}, pad=True)
    raise ExportError(f'--hf={source!r} is a {model_type!r} model, not a supported metric depth model; give '
                      f'{METRIC_MODELS}')


def training_camera(family: MetricFamily, source: str, given: str | None) -> str:
    """Name (a key of ``TRAINING_CAMERAS``) of the camera ``source`` was trained on: ``given``, else the hub id's
    or folder's name (e.g. ...-Metric-Indoor-..., glpn-kitti), else the model's max_depth.

    Raises:
        ExportError: none of these tells (e.g. a renamed fine-tune with another max_depth): give --training-camera.
    """
    if given is not None:
        return given
    name = Path(source.rstrip('/')).name.lower()
    said = [camera for camera, words in family.cameras.items() if any(word in name for word in words)]
    if len(said) == 1:
        return said[0]
    if not said and family.max_depth in family.by_max_depth:
        return family.by_max_depth[family.max_depth]
    raise ExportError(f'--hf={source!r}: cannot tell which camera the {family.model_type} model was trained on '
                      f'(from its name or max_depth {family.max_depth:g} m); give --training-camera, one of '
                      f'{sorted(family.cameras)}')


def round_to_multiple(height: int, width: int, multiple: int) -> tuple[int, int]:
    """(H, W) as multiples of ``multiple`` next to the size asked, the pair that keeps its aspect ratio best.

    Each side is rounded down or up (never below ``multiple``); of the four pairs, the one whose W/H is nearest
    ``width / height``, then the one nearest in size. E.g. 480x640 at 14 -> 476x630 (1.324; nearest per side
    would give 476x644, 1.353).
    """
    def around(value: int) -> set[int]:
        return {max(multiple, value // multiple * multiple), max(multiple, -(-value // multiple) * multiple)}

    aspect = width / height
    return min(((h, w) for h in around(height) for w in around(width)),
               key=lambda hw: (round(abs(hw[1] / hw[0] - aspect), 9), abs(hw[0] - height) + abs(hw[1] - width)))


class MetricDepthModel(nn.Module):
    """image [B,3,H,W] RGB 0..1 -> {'depth': [B,1,H,W] metres in [min_depth, max_depth]} (module docstring)."""

    def __init__(self, model: nn.Module, mean: tuple, std: tuple, family: MetricFamily):
        super().__init__()
        self.model, self.pad = model, family.pad
        self.min_depth, self.max_depth = family.min_depth, family.max_depth
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        height, width = image.shape[-2:]
        pad_h = pad_w = 0
        if self.pad:  # transformers' ZoeDepthImageProcessor: int(sqrt(n / 2) * 3) per side, reflect
            pad_h, pad_w = int(math.sqrt(height / 2) * 3), int(math.sqrt(width / 2) * 3)
            image = F.pad(image, (pad_w, pad_w, pad_h, pad_h), mode='reflect')
            image = F.interpolate(image, size=(height, width), mode='bilinear', align_corners=False)
        depth = self.model(pixel_values=(image - self.mean) / self.std).predicted_depth.unsqueeze(1)
        size = (height + 2 * pad_h, width + 2 * pad_w)
        if tuple(depth.shape[-2:]) != size:
            depth = F.interpolate(depth, size=size, mode='bilinear', align_corners=False)
        depth = depth[..., pad_h:pad_h + height, pad_w:pad_w + width]
        return {'depth': depth.clamp(self.min_depth, self.max_depth)}


@dataclass
class PretrainedExport:
    """What ``export_pretrained`` wrote: the check report, the model, the size asked and the time it took."""

    report: ExportReport
    model: MetricDepthModel
    family: MetricFamily
    camera: str
    requested: tuple[int, int] | None  # (H, W) asked for, None: the model's own size
    size: tuple[int, int]  # (H, W) exported
    seconds: float  # loading, export and checks


def load_metric_model(source: str) -> tuple[MetricDepthModel, MetricFamily]:
    """The pretrained metric model at ``source`` (hub id or folder), wrapped to the contract's input and output.

    Raises:
        ModelSourceError: ``source`` cannot be loaded (one line).
        RelativeModelError, ExportError: not a supported metric model.
    """
    hf_config = load_pretrained(AutoConfig.from_pretrained, source, '--hf', LOCAL_FOLDER)
    family = metric_family(hf_config, source)  # refused before the weights are read
    model = load_pretrained(AutoModelForDepthEstimation.from_pretrained, source, '--hf', LOCAL_FOLDER)
    return MetricDepthModel(model.eval(), *image_normalisation(source, family.model_type), family).eval(), family


def export_pretrained(source: str, output: str | Path, height: int | None = None, width: int | None = None, *,
                      camera: str | None = None, opset: int = 17, tolerance: float = 1e-3,
                      check_images: int = 4) -> PretrainedExport:
    """Export the pretrained metric model at ``source`` to ``output`` (ONNX, contract of docs/design.md section 3)
    and check it against PyTorch on synthetic scenes of its kind (indoor or outdoor).

    Args:
        height, width: the input size asked (the camera's aspect ratio), each rounded to the model's multiple;
            both None: the model's own size for its training camera.
        camera: a key of ``TRAINING_CAMERAS`` when the model's name and max_depth do not tell.
    Raises:
        ModelSourceError, RelativeModelError, ExportError (one line each; ExportError also for one size only or
        a size that is not positive).
    """
    if (height is None) != (width is None) or any(side is not None and side <= 0 for side in (height, width)):
        raise ExportError(f'--hf: give both --height and --width, positive, at your camera\'s aspect ratio (got '
                          f'{height}x{width}), or neither (the model\'s own size)')
    start = time.perf_counter()
    model, family = load_metric_model(source)
    camera = training_camera(family, source, camera)
    trained_on = TRAINING_CAMERAS[camera]
    requested = (height, width) if height is not None else None
    size = round_to_multiple(*(requested or family.native_size(trained_on)), family.multiple)
    metadata = {'input_height': str(size[0]), 'input_width': str(size[1]),
                'min_depth': repr(family.min_depth), 'max_depth': repr(family.max_depth),
                'focal_length': repr(trained_on.focal_at(*size)), 'model_name': Path(source.rstrip('/')).name,
                'training_dataset': camera, 'export_version': EXPORT_VERSION, 'outputs': 'depth',
                'pretrained_source': source, 'focal_length_source': trained_on.source}
    cfg = Config()
    cfg.data.dataset = 'synthetic_indoor' if trained_on.indoor else 'synthetic_outdoor'
    cfg.data.eval_height, cfg.data.eval_width, cfg.data.num_test = *size, check_images
    images, images_source = sample_inputs(cfg, *size, check_images)
    report = write_checked_onnx(ExportWrapper(model, with_std=False).eval(), output, metadata, images,
                                images_source, opset=opset, tolerance=tolerance)
    return PretrainedExport(report, model, family, camera, requested, size, time.perf_counter() - start)
