"""Per-frame depth pipeline, free of ROS: RGB frame -> metric depth, uncertainty, point cloud, preview.

Stages: resize to the model input (INTER_AREA when shrinking, unless resize_interpolation is 'linear';
INTER_LINEAR when enlarging) -> backend ->
resize depth back to the input size (bilinear) -> focal-length scale correction -> ground-plane scale
correction (params.scale_correction, ground_plane.py) -> back-projection.

Focal-length scale correction. An object of metric size S at depth Z appears s = f * S / Z pixels
wide in a camera of focal length f (pixels). A model trained with one camera (focal f_train at its
input size) that judges depth from apparent size predicts Z_pred = f_train * S / s. A camera with
focal f_cam at the model's input size shows the object at s = f_cam * S / Z_true, so
    Z_pred = Z_true * f_train / f_cam   ->   Z_true = Z_pred * f_cam / f_train.
f_cam = sqrt(fx * sx * fy * sy), with sx = W_model / W and sy = H_model / H the resize factors
(equal to fx * sx for square pixels and a kept aspect ratio). Assumption: the scene's objects have
the sizes seen in training (same scene scale) and apparent size ~ f / Z is the model's metric cue;
other cues (horizon height, texture) do not scale this way, so large focal mismatches stay approximate.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from depth_kd_ros.backends import BackendError, DepthBackend, create_backend
from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.camera.pointcloud import PackedCloud, build_cloud
from depth_kd_ros.colorize import colorize
from depth_kd_ros.ground_plane import GroundPlaneScale, ScaleUpdate
from depth_kd_ros.model_file import ModelFileError, ModelInfo, read_model_info
from depth_kd_ros.params import NodeParams, ParameterError


def focal_scale(camera: CameraModel, info: ModelInfo) -> float:
    """Depth factor f_cam / f_train (module docstring), f_cam at the model's input size."""
    return camera.focal_at(info.input_width, info.input_height) / info.focal_length


@dataclass
class FrameResult:
    """One processed frame. Arrays are at the input image's size H x W."""

    depth: np.ndarray  # float32 [H,W] metres, NaN = invalid (REP 118)
    depth_std: np.ndarray | None  # float32 [H,W] metres, when the model has a depth_std output
    cloud: PackedCloud | None  # None without a (valid) camera or when not requested
    colored: np.ndarray | None  # uint8 [H,W,3] bgr8 preview, when requested
    scale: float  # scale factor applied to depth: focal x ground-plane factor (1.0 when off or without camera)
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage
    ground: ScaleUpdate | None = None  # this frame's ground-plane scale update (scale_correction, with a camera)


@dataclass
class PendingFrame:
    """A frame between ``DepthPipeline.prepare`` and ``finish``: its model input, then the model's outputs."""

    rgb: np.ndarray  # uint8 [H,W,3] RGB, the input frame
    camera: CameraModel | None
    blob: np.ndarray | None  # float32 [1,3,h,w] model input, until inferred
    timings: dict[str, float]  # ms per stage so far
    outputs: dict[str, np.ndarray] | None = None  # the backend's outputs, once inferred


def _resize(image: np.ndarray, width: int, height: int, area: bool = False) -> np.ndarray:
    """Resize to width x height; INTER_AREA (antialiased) only when ``area`` and shrinking both ways."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = area and width <= image.shape[1] and height <= image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class DepthPipeline:
    """Backend + model metadata + parameters. ``params`` may be swapped between frames (runtime changes)."""

    def __init__(self, backend: DepthBackend, model_info: ModelInfo, params: NodeParams):
        self.backend = backend
        self.info = model_info
        self.params = params
        self._ground: GroundPlaneScale | None = None  # the estimator of _ground_key's parameters
        self._ground_key: tuple | None = None

    def _ground_scale(self) -> GroundPlaneScale | None:
        """The ground-plane estimator of the current parameters, rebuilt (its factor back to 1.0) when
        scale_correction or camera_height changed: a factor measured for another height is wrong for this one."""
        key = (self.params.scale_correction, self.params.camera_height)
        if key != self._ground_key:
            self._ground_key = key
            self._ground = GroundPlaneScale(self.params.camera_height) if key[0] == 'ground_plane' else None
        return self._ground

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 [H,W,3] RGB -> float32 [1,3,h,w] in 0..1 at the model's input size."""
        resized = _resize(rgb, self.info.input_width, self.info.input_height,
                          area=self.params.resize_interpolation == 'area')
        blob = np.empty((1, 3, self.info.input_height, self.info.input_width), dtype=np.float32)
        np.multiply(resized.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=blob[0], dtype=np.float32)
        return blob

    def _postprocess(self, output: np.ndarray, width: int, height: int, scale: float,
                     zero_valid: bool = False) -> np.ndarray:
        expected = (1, 1, self.info.input_height, self.info.input_width)
        if output.shape != expected:
            raise BackendError(f'backend returned shape {output.shape}, expected {expected}')
        model_depth = output[0, 0].astype(np.float32, copy=False)
        depth = _resize(model_depth, width, height)
        # scaled in place when the resize made a new array, else into a copy: backends may reuse their buffers
        depth = np.multiply(depth, np.float32(scale), out=None if depth is model_depth else depth, dtype=np.float32)
        low, high = depth.min(), depth.max()  # NaN if any pixel is: then neither test below passes
        if (low >= 0 if zero_valid else low > 0) and high < np.inf:
            return depth  # every pixel valid (the usual frame): no mask to build
        with np.errstate(invalid='ignore'):
            valid = (depth >= 0) if zero_valid else (depth > 0)  # NaN compares False
            valid &= depth < np.inf
        depth[~valid] = np.nan
        return depth

    def process(self, rgb: np.ndarray, camera: CameraModel | None = None, *,
                want_cloud: bool = True, want_colored: bool = False, want_std: bool = True) -> FrameResult:
        """Run one frame: ``finish(infer(prepare(rgb, camera)))``. The three steps are separate so that the
        offline tool can run the model on one frame while it prepares the next and finishes the one before.

        Args:
            rgb: uint8 [H,W,3] RGB (image_codec output).
            camera: intrinsics at H x W, or None (no focal scaling, no cloud).
            want_cloud, want_colored: compute the cloud / preview (skip what nobody subscribes to).
            want_std: resize depth_std back (needed for depth/uncertainty and the cloud's uncertainty
                filter; otherwise FrameResult.depth_std is None).
        Returns:
            FrameResult at H x W.
        Raises:
            CameraInfoError: camera size differs from the image (callers may retry with camera=None).
            BackendError: inference failed or returned a wrong shape.
        """
        return self.finish(self.infer(self.prepare(rgb, camera)), want_cloud=want_cloud, want_colored=want_colored,
                           want_std=want_std)

    def prepare(self, rgb: np.ndarray, camera: CameraModel | None = None) -> PendingFrame:
        """The first step of ``process``: check the camera against the frame and make the model input.

        Raises:
            CameraInfoError: camera size differs from the image.
        """
        height, width = rgb.shape[:2]
        if camera is not None:
            camera.check_size(width, height)
        start = time.perf_counter()
        blob = self.preprocess(rgb)
        return PendingFrame(rgb, camera, blob, {'resize': (time.perf_counter() - start) * 1e3})

    def infer(self, frame: PendingFrame) -> PendingFrame:
        """The second step of ``process``: the backend on ``frame.blob`` (dropped after), outputs kept on ``frame``.

        Each backend returns new arrays per call (ONNX Runtime's run, TensorRT's copy out of its buffers, torch's
        new tensors), so a frame's outputs stay valid while the next frame is inferred.

        Raises:
            BackendError: inference failed.
        """
        start = time.perf_counter()
        frame.outputs = self.backend.infer(frame.blob)
        frame.timings['inference'] = (time.perf_counter() - start) * 1e3
        frame.blob = None
        return frame

    def finish(self, frame: PendingFrame, *, want_cloud: bool = True, want_colored: bool = False,
               want_std: bool = True) -> FrameResult:
        """The last step of ``process``: depth at the frame's size, scale, cloud and preview from the outputs.

        Frames go through ``finish`` in their order (the ground-plane scale is smoothed over frames).
        Raises:
            BackendError: an output of the wrong shape.
        """
        params, info, rgb, camera, timings = self.params, self.info, frame.rgb, frame.camera, frame.timings
        height, width = rgb.shape[:2]
        outputs = frame.outputs
        start = time.perf_counter()
        scale = focal_scale(camera, info) if (camera is not None and params.focal_scaling) else 1.0
        depth = self._postprocess(outputs['depth'], width, height, scale)
        depth_std = (self._postprocess(outputs['depth_std'], width, height, scale, zero_valid=True)
                     if 'depth_std' in outputs and want_std else None)
        timings['postprocess'] = (time.perf_counter() - start) * 1e3
        ground_scale, ground = self._ground_scale(), None
        if ground_scale is not None and camera is not None:  # the floor's distance needs the intrinsics
            start = time.perf_counter()
            ground = ground_scale.update(depth, camera)
            factor = np.float32(ground.factor)
            depth *= factor  # depth and depth_std are this frame's own arrays (_postprocess copies)
            if depth_std is not None:
                depth_std *= factor
            scale *= ground.factor
            timings['ground'] = (time.perf_counter() - start) * 1e3
        cloud = colored = None
        if want_cloud and camera is not None:
            start = time.perf_counter()
            cloud = build_cloud(depth, camera, stride=params.points_stride,
                                min_range=params.points_min_range,
                                max_range=params.points_max_range or info.max_depth * scale,
                                rgb=rgb if params.points_rgb else None, depth_std=depth_std,
                                uncertainty_threshold=params.uncertainty_threshold,
                                organized=params.points_organized)
            timings['cloud'] = (time.perf_counter() - start) * 1e3
        if want_colored:
            start = time.perf_counter()
            colored = colorize(depth, params.colored_min_depth or info.min_depth,
                               params.colored_max_depth or info.max_depth, params.colormap)
            timings['colorize'] = (time.perf_counter() - start) * 1e3
        return FrameResult(depth, depth_std, cloud, colored, scale, timings, ground)


def check_params_for_model(params: NodeParams, info: ModelInfo) -> None:
    """The rules that need the model's range: 0 in colored_min/max_depth means the model's min/max depth,
    so e.g. colored_min_depth 20 with a 10 m model would make every frame's preview (and so the frame) fail.

    Raises:
        ParameterError: the colormap range that results is empty.
    """
    low, high = params.colored_min_depth or info.min_depth, params.colored_max_depth or info.max_depth
    if not low < high:
        raise ParameterError(f'colored_min_depth, colored_max_depth: the colormap range would be {low} to {high} m '
                             f'(0 means the model\'s {info.min_depth} to {info.max_depth} m); the start must be below '
                             'the end')


def backend_options(params: NodeParams) -> dict:
    """Constructor options for ``create_backend(params.backend, ...)`` from the parameters."""
    if params.backend == 'tensorrt':
        return {'precision': params.trt_precision, 'cache_dir': params.trt_cache_dir or None}
    return {'device': params.device, 'num_threads': params.num_threads}


def load_pipeline(params: NodeParams) -> DepthPipeline:
    """Read the model file's contract, create the backend, and build the pipeline (node and offline tool).

    Also sets OpenCV's process-wide thread count from ``params.opencv_threads``.

    Raises:
        ModelFileError: model file missing or not following the contract.
        BackendError: backend not installed or cannot load the model.
        ParameterError: parameters that do not fit the model (check_params_for_model).
    """
    info = read_model_info(params.model_path)
    check_params_for_model(params, info)
    # per-frame OpenCV calls take ~1 ms: fanning them out to threads costs more than it saves when the
    # CPU is shared with inference (bench/bench_node.py); -1 restores OpenCV's default
    cv2.setNumThreads(params.opencv_threads or -1)
    backend = create_backend(params.backend, params.model_path, **backend_options(params))
    check_model_runs(backend, info, params.model_path)
    return DepthPipeline(backend, info, params)


def check_model_runs(backend: DepthBackend, info: ModelInfo, path: str) -> None:
    """Run the model once on a grey frame and check its outputs' shapes: a graph whose declared shapes follow
    the contract but whose computation does not (fails, or returns another size) is refused at start-up
    instead of failing every frame. Also the warm-up of lazily initialised runtimes.

    Raises:
        ModelFileError: inference fails (any exception) or an output is not [1,1,H,W] at the model input size.
    """
    blob = np.full((1, 3, info.input_height, info.input_width), 0.5, dtype=np.float32)
    try:
        outputs = backend.infer(blob)
    except Exception as exc:  # noqa: BLE001 - BackendError, or e.g. a backend's zip(strict=True) on missing outputs
        raise ModelFileError(f'{path}: the model fails on a test frame: {str(exc).strip()}') from exc
    expected = (1, 1, info.input_height, info.input_width)
    for name in info.outputs:
        shape = getattr(outputs.get(name), 'shape', None)
        if shape != expected:
            raise ModelFileError(f'{path}: output {name} has shape {shape} when run, expected {expected} '
                                 '(the graph does not compute what it declares)')
