"""``mono_depth_offline images``: depth PNGs, previews, PLY clouds and metrics for a folder of images.

Paper: DisDepth (arXiv 2404.16386); evaluation as in its section 4 (AbsRel, SqRel, RMSE, RMSE log, log10,
SILog, delta < 1.25^k averaged per image) on the user's own RGB-D frames. Every frame goes through the
node's frame sequence (depth_kd_ros.frames) with the calibration file as its camera_info: rectified with its
K, D, R, P when the params file sets ``rectify``, as the node and ``bag`` do, and depth rescaled by
z * f_camera / f_train with its P (K when P is unset). A calibration no frame could use (zero focal; with
rectify, a distortion model rectification does not know) stops the run at start.

Output layout (OUTPUT_DIR, written under a temporary name and renamed when complete):

    depth/<stem>.png     uint16 millimetres, round(1000 * z); 0 = invalid (also z > 65.535 m, beyond uint16)
    colored/<stem>.png   colour preview (the node's depth/colored: colormap and range from the params file)
    points/<stem>.ply    with --ply: binary little-endian PLY, float x y z metres in the optical frame
                         (x right, y down, z forward) + uchar red green blue, valid points only
    metrics.json         with --gt-dir: the metric keys of training/evaluate.py and num_images

Ground truth: ``<gt-dir>/<stem>.png`` single-channel, metres = value / S, 0 = invalid; valid pixels are
those in (min_depth, max_depth] of the model, predictions clipped to that range, no crop.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from depth_kd_ros.backends import BackendError
from depth_kd_ros.camera.calibration import CameraFileError, load_camera_yaml
from depth_kd_ros.camera.model import CameraInfoError, camera_model
from depth_kd_ros.camera.pointcloud import write_ply
from depth_kd_ros.camera.rectify import Calibration
from depth_kd_ros.frames import NAMES_SHOWN, FramePath, FrameSkipped
from depth_kd_ros.io.depth_encoding import depth_to_millimetres
from depth_kd_ros.io.image_files import list_images
from depth_kd_ros.metrics import MetricAverager, compute_metrics, format_table
from depth_kd_ros.offline.overlapped import Overlapped
from depth_kd_ros.offline.run import AtomicOutput, OfflineError, Summary, make_pipeline
from depth_kd_ros.pipeline import PendingFrame

#: ground-truth depth maps are 16-bit PNGs (KITTI, NYU's sync layout, TUM, RealSense recorders)
GROUND_TRUTH_SUFFIXES = ('.png',)
#: clip floor of predictions for a model with min_depth 0 (log of 0), the metrics module's default
MIN_EVAL_DEPTH = 1e-3


def images_by_stem(folder: Path, suffixes: tuple[str, ...] | None = None) -> dict[str, Path]:
    """``{stem: file}`` of the images in ``folder`` (``image_files.list_images``), in name order.

    Raises:
        ImageFolderError: not a directory, or no images.
        OfflineError: two images with one stem (their outputs would collide).
    """
    files = list_images(folder) if suffixes is None else list_images(folder, suffixes)
    stems = [p.stem for p in files]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise OfflineError(f'{folder}: several images share the stem {duplicates[0]!r}; outputs would collide')
    return {p.stem: p for p in files}


def read_ground_truth(path: Path, scale: float, shape: tuple[int, int]) -> np.ndarray:
    """A ground-truth depth PNG in metres, float32 [H,W] (0 = invalid).

    Raises:
        OfflineError: unreadable, not single-channel, or not of ``shape`` (the image's size).
    """
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 2:
        raise OfflineError(f'ground truth {path} is not a readable single-channel depth image')
    if raw.shape != shape:
        raise OfflineError(f'ground truth {path} is {raw.shape[1]}x{raw.shape[0]}, '
                           f'its image is {shape[1]}x{shape[0]}')
    return raw.astype(np.float32) / np.float32(scale)


def write_outputs(folder: Path, stem: str, result, ply: bool) -> None:
    """depth/<stem>.png, colored/<stem>.png and with ``ply`` points/<stem>.ply of a pipeline FrameResult.

    Raises:
        OSError: a file cannot be written.
    """
    for path, image in ((folder / 'depth' / f'{stem}.png', depth_to_millimetres(result.depth)),
                        (folder / 'colored' / f'{stem}.png', result.colored)):
        if not cv2.imwrite(str(path), image):
            raise OSError(f'cannot write {path}')
    if ply:
        write_ply(folder / 'points' / f'{stem}.ply', *result.cloud.valid_points())


def read_frame(frames: FramePath, path: Path, calibration: Calibration) -> tuple[Path, PendingFrame | str]:
    """``(path, the frame prepared for the model)`` through the frame sequence with the calibration file's camera
    (the reader thread), or ``(path, why it is skipped)`` when the image cannot be decoded or its header says
    more than ``max_input_pixels`` (checked before decoding).

    Raises:
        OfflineError: the image is not of the calibration's size: the run stops, as one folder must hold one
            camera's images of one size.
        OSError: the file cannot be read.
    """
    try:
        return path, frames.prepare(path, calibration, require_camera=True)[1]
    except FrameSkipped as exc:
        if exc.kind == 'camera_size_mismatch':
            raise OfflineError(f'{path.name}: {exc}; one folder must hold one camera\'s images of one size') from exc
        return path, exc.reason


def infer_frame(frames: FramePath, frame: tuple[Path, PendingFrame | str]) -> tuple[Path, PendingFrame | str]:
    """The model on a ``read_frame`` result (the inference thread), or ``(path, why it is skipped)``."""
    path, pending = frame
    if isinstance(pending, str):
        return frame
    try:
        return path, frames.pipeline.infer(pending)
    except BackendError as exc:
        return path, f'inference failed: {exc}'


def run_images(args) -> Summary:
    """Process ``args.input`` into ``args.output`` (see the module docstring); returns the summary.

    Raises:
        ImageFolderError: INPUT or --gt-dir missing or without images.
        OfflineError: an image whose size is not the calibration's (mixed sizes), GT of another
            size, or no frame processed. CameraFileError, ParameterError, ModelFileError, BackendError.
    """
    calibration = load_camera_yaml(args.camera_info)
    files = list(images_by_stem(args.input).values())
    ground_truth = images_by_stem(args.gt_dir, GROUND_TRUTH_SUFFIXES) if args.gt_dir else None
    frames = FramePath(make_pipeline(args, points_rgb=True))
    info = frames.pipeline.info
    try:  # a calibration no frame could use stops the run before it starts
        camera_model(calibration, calibration.width, calibration.height)
        if frames.pipeline.params.rectify:
            calibration.check()
    except CameraInfoError as exc:
        raise CameraFileError(f'camera file {args.camera_info}: {exc}') from exc
    outputs = ('depth', 'depth/colored', 'points') if args.ply else ('depth', 'depth/colored')
    averager, no_gt = MetricAverager(), []
    summary = Summary()
    output = AtomicOutput(args.output, args.overwrite, args.input,
                          keep=(frames.pipeline.params.model_path, args.camera_info, args.gt_dir))
    try:
        for name in ('depth', 'colored', 'points') if args.ply else ('depth', 'colored'):
            (output.path / name).mkdir(parents=True)
        summary.begin()
        with tqdm(total=len(files), unit='frame', disable=args.quiet, leave=False) as progress, \
                Overlapped((read_frame(frames, path, calibration) for path in files),
                           lambda frame: infer_frame(frames, frame)) as inferred:
            for path, pending in inferred:  # this thread finishes, encodes and writes
                progress.update()
                summary.frames_in += 1
                try:
                    result = pending if isinstance(pending, str) else frames.finish(pending, outputs)
                except BackendError as exc:
                    result = f'inference failed: {exc}'
                if isinstance(result, str):
                    summary.skip(result, path.name)
                    continue
                write_outputs(output.path, path.stem, result, args.ply)
                summary.add(result)
                if ground_truth is None:
                    continue
                metrics = None
                if path.stem in ground_truth:
                    gt = read_ground_truth(ground_truth[path.stem], args.gt_scale, result.depth.shape)
                    metrics = evaluate_frame(result.depth, gt, info.min_depth, info.max_depth)
                if metrics is None:
                    no_gt.append(path.name)
                else:
                    averager.update(metrics)
        summary.end()
        if summary.written == 0:
            raise OfflineError(f'no image of {args.input} could be processed; nothing written')
        if ground_truth is not None:
            if no_gt:
                summary.notes.append(f'not evaluated (no ground truth file or no valid pixel): {len(no_gt)} '
                                     f'images: {", ".join(no_gt[:NAMES_SHOWN])}')
            if not averager.count:
                raise OfflineError(f'no image of {args.input} has ground truth in {args.gt_dir}')
            metrics = averager.compute()
            (output.path / 'metrics.json').write_text(json.dumps(metrics, indent=2) + '\n')
            summary.notes.append(format_table({info.model_name: metrics}))
        output.commit()
    except BaseException:
        output.abort()
        raise
    return summary


def evaluate_frame(depth: np.ndarray, gt: np.ndarray, min_depth: float, max_depth: float) -> dict | None:
    """Metrics of one frame (depth_kd_ros.metrics), or None when the GT has no valid pixel.

    Args:
        depth: float32 [H,W] predicted metres (NaN invalid); gt: float32 [H,W] metres (0 invalid).
        min_depth, max_depth: the model's range (metres): GT valid in (min_depth, max_depth], the
            prediction clipped to it, as training/evaluate.py does (without its dataset crops).
    """
    mask = (gt > min_depth) & (gt <= max_depth)
    if not mask.any():
        return None
    return compute_metrics(depth, gt, mask, min_depth=max(min_depth, MIN_EVAL_DEPTH), max_depth=max_depth)
