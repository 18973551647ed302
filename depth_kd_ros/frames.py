"""One frame path for the node, the offline tool and training: message in -> DepthPipeline -> messages out.

The frame sequence, one per frame and the same for every caller (``camera_frame``):

    decode        sensor_msgs/Image (image_codec.ENCODINGS; any other encoding through cv_bridge when it is
                  installed) or CompressedImage (PNG, JPEG, ...), or an image file, refused above
                  max_input_pixels before decoding -> uint8 [H,W,3] RGB
    rectify       with params.rectify: the frame undistorted and rectified from its CameraInfo (K, D, R, P) as
                  image_proc does, maps cached per calibration; without a usable CameraInfo it is skipped
    camera        the paired CameraInfo -> CameraModel of the H x W image (P, else K)
    model input   DepthPipeline.prepare: resized to the model                           (FramePath.prepare)

and around the pipeline:

    pipeline      DepthPipeline.process for the outputs asked for -> FrameResult       (FramePath.run; or its
                  steps prepare -> infer -> FramePath.finish, which the offline tool overlaps across frames)
    messages out  depth (32FC1 m or 16UC1 mm: params.depth_encoding), depth/camera_info (the rectified camera's
                  after rectify: D zero, K from P), depth/colored (bgr8), depth/uncertainty (32FC1 m),
                  points (PointCloud2), each with the input's header (REP 118, REP 103)  (FramePath.messages)

A frame the sequence cannot serve raises one ``FrameSkipped``, whose ``kind`` (the diagnostics key) and ``reason``
(the summaries' words) every caller reports alike. Callers differ in one policy, chosen by argument: a frame
without a usable camera is served without focal scaling or points (the node: ``require_camera=False``) or skipped
(the offline tool and training: ``require_camera=True``). What a caller does about a skipped frame (count and
log a fault, skip and name it, stop the run) stays with it.

The node publishes what ``messages`` returns, ``mono_depth_offline bag`` writes it to a bag, ``mono_depth_offline
images`` and ``training/evaluate.py --onnx`` take ``run``'s arrays: one decoder, one pipeline call and one set of
message fillers, so what is evaluated and recorded is what the node publishes. Message classes differ between
the callers (rclpy's sensor_msgs in the node, rosbags' typestore classes in the offline bag), so each passes a
``MessageFactory`` of its library; the fillers (messages.py) set plain attributes on either.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from depth_kd_ros.camera.calibration import Calibration
from depth_kd_ros.camera.model import CameraInfoError, CameraModel, camera_model
from depth_kd_ros.camera.rectify import Rectifier, rectified_calibration
from depth_kd_ros.io.depth_encoding import encode_depth
from depth_kd_ros.io.image_codec import ENCODINGS, ImageDecodeError, decode_compressed, decode_image
from depth_kd_ros.io.image_files import read_image
from depth_kd_ros.messages import copy_camera_info, fill_calibration, fill_image, fill_pointcloud2
from depth_kd_ros.pipeline import DepthPipeline, FrameResult, PendingFrame

try:  # robots have cv_bridge from apt; used only for encodings image_codec does not cover
    from cv_bridge import CvBridge
except ImportError:
    CvBridge = None

#: the output topics (relative names, so launch files remap them), in the node's publishing order, and the
#: sensor_msgs message of each
OUTPUT_TYPES = {'depth': 'Image', 'depth/camera_info': 'CameraInfo', 'depth/colored': 'Image',
                'depth/uncertainty': 'Image', 'points': 'PointCloud2'}
OUTPUT_TOPICS = tuple(OUTPUT_TYPES)
#: how many frame names a summary lists per skip reason
NAMES_SHOWN = 5


@dataclass(frozen=True)
class MessageFactory:
    """Empty output messages of one message library, each created with the header it carries."""

    image: Callable[[Any], Any]  # header -> sensor_msgs/Image
    camera_info: Callable[[Any], Any]  # header -> sensor_msgs/CameraInfo
    point_cloud2: Callable[[Any], Any]  # header -> sensor_msgs/PointCloud2
    point_field: Callable[..., Any]  # (name=, offset=, datatype=, count=) -> sensor_msgs/PointField


def decode_message(msg, max_pixels: int, bridge=None) -> np.ndarray:
    """uint8 [H,W,3] RGB of a sensor_msgs/Image or CompressedImage (a message without ``encoding``), of rclpy's
    or rosbags' classes.

    Args:
        max_pixels: frames with more pixels are refused (checked before decoding).
        bridge: a cv_bridge ``CvBridge`` for encodings image_codec does not cover, or None (refused).
    Raises:
        ImageDecodeError: unsupported encoding, bad layout, corrupt or truncated compressed data, or more
            than ``max_pixels`` pixels (its ``kind`` says which, for diagnostics).
    """
    if not hasattr(msg, 'encoding'):
        return decode_compressed(msg.data, message_format=msg.format, max_pixels=max_pixels)
    if msg.encoding not in ENCODINGS and bridge is not None and msg.height * msg.width > 0:
        if msg.height * msg.width > max_pixels:  # decode_image's limit, before cv_bridge allocates
            raise ImageDecodeError(f'image {msg.width}x{msg.height} exceeds max_input_pixels', 'image_too_large')
        try:
            return bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8')
        except Exception as exc:  # noqa: BLE001 - cv_bridge raises CvBridgeError and others
            raise ImageDecodeError(f'cv_bridge cannot convert {msg.encoding!r}: {exc}',
                                   'unsupported_encoding') from exc
    return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                        is_bigendian=bool(msg.is_bigendian), max_pixels=max_pixels)


class FrameSkipped(Exception):
    """A frame the sequence cannot serve.

    ``stage`` is the step that failed: 'decode' (undecodable or too large), 'camera_info' (none paired with the
    frame), 'camera' (the paired one is unusable: bad K or P, another size) or 'rectify' (rectify is on and it
    cannot rectify with it). ``kind`` is the cause's stable key for diagnostics counters (ImageDecodeError's or
    CameraInfoError's kind, 'no_camera_info'); ``reason`` is the words a summary groups skipped frames by.
    """

    REASONS = {'decode': 'undecodable image ({kind})', 'camera_info': 'no camera_info at or before the image stamp',
               'camera': 'unusable camera_info ({kind})', 'rectify': 'cannot rectify ({kind})'}

    def __init__(self, stage: str, kind: str, message: str):
        super().__init__(message)
        self.stage, self.kind = stage, kind

    @property
    def reason(self) -> str:
        return self.REASONS[self.stage].format(kind=self.kind)


def frame_name(index: int, stamp_ns: int) -> str:
    """A recorded frame's name in reports: ``'#<index> (stamp <sec>.<nanosec>)'``, its place and header stamp."""
    return f'#{index} (stamp {stamp_ns // 1_000_000_000}.{stamp_ns % 1_000_000_000:09d})'


@dataclass
class SkippedFrames:
    """The frames a run skipped, by reason (``FrameSkipped.reason`` or the caller's own), in the order met."""

    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> frame names

    def skip(self, reason: str, name: str) -> None:
        self.skipped.setdefault(reason, []).append(name)


def skipped_lines(skipped: dict[str, list[str]]) -> list[str]:
    """``'  skipped N (reason): name, ... and M more'`` per reason, sorted, at most NAMES_SHOWN names each."""
    lines = []
    for reason, names in sorted(skipped.items()):
        more = f' and {len(names) - NAMES_SHOWN} more' if len(names) > NAMES_SHOWN else ''
        lines.append(f'  skipped {len(names)} ({reason}): {", ".join(names[:NAMES_SHOWN])}{more}')
    return lines


@dataclass
class CameraFrame:
    """A decoded frame with its camera: what the pipeline takes (``DepthPipeline.prepare(rgb, camera)``)."""

    rgb: np.ndarray  # uint8 [H,W,3] RGB, rectified when ``rectified``
    camera: CameraModel | None  # intrinsics at H x W; None: no usable camera (no focal scaling, no points)
    camera_info: Any  # the CameraInfo ``camera`` comes from, for depth/camera_info; None when ``camera`` is None
    rectified: bool  # went through rectification (depth/camera_info is then the rectified camera)
    timings: dict[str, float] = field(default_factory=dict)  # ms: 'conversion' (decoding), 'rectify'
    camera_missing: FrameSkipped | None = None  # why ``camera`` is None, for a caller that serves such frames


def camera_frame(image, camera_info, *, require_camera: bool, max_pixels: int, rectifier: Rectifier | None = None,
                 bridge=None) -> CameraFrame:
    """The frame sequence (module docstring): decode -> rectify -> camera model.

    Args:
        image: a sensor_msgs/Image or CompressedImage (rclpy's or rosbags' classes), or an image file's Path.
        camera_info: the CameraInfo paired with it (any object with its fields: a message, a camera.calibration
            Calibration), or None.
        require_camera: skip a frame without a usable camera (FrameSkipped); False serves it without one and
            says why in ``camera_missing``.
        max_pixels: frames with more pixels are skipped (checked before decoding).
        rectifier: rectify with ``camera_info`` (params.rectify; the maps are cached in it), or None.
        bridge: a cv_bridge ``CvBridge`` for encodings image_codec does not cover, or None (refused).
    Raises:
        FrameSkipped: the frame cannot be decoded; rectification is asked for and there is no camera_info or it
            cannot rectify with it (a raw frame is never passed on as rectified); with ``require_camera``, no
            usable camera.
        OSError: an image file cannot be read.
    """
    start = time.perf_counter()
    try:
        rgb = read_image(image, max_pixels) if isinstance(image, Path) else decode_message(image, max_pixels, bridge)
    except ImageDecodeError as exc:
        raise FrameSkipped('decode', exc.kind, str(exc)) from exc
    timings = {'conversion': (time.perf_counter() - start) * 1e3}
    if rectifier is not None:
        if camera_info is None:
            raise FrameSkipped('camera_info', 'no_camera_info', 'rectify is on but the frame has no camera_info')
        start = time.perf_counter()
        try:
            rgb = rectifier.rectify(rgb, camera_info)
        except CameraInfoError as exc:
            raise FrameSkipped('rectify', exc.kind, str(exc)) from exc
        timings['rectify'] = (time.perf_counter() - start) * 1e3
    camera = missing = None
    if camera_info is None:
        missing = FrameSkipped('camera_info', 'no_camera_info', 'the frame has no camera_info')
    else:
        try:
            camera = camera_model(camera_info, rgb.shape[1], rgb.shape[0])
        except CameraInfoError as exc:
            missing = FrameSkipped('camera', exc.kind, str(exc))
    if missing is not None and require_camera:
        raise missing
    return CameraFrame(rgb, camera, camera_info if camera is not None else None, rectifier is not None, timings,
                       missing)


class FramePath:
    """A loaded DepthPipeline with the message side around it.

    Args:
        pipeline: the model, backend and parameters (``pipeline.params`` may be swapped between frames).
        messages: constructors of the caller's message library; needed only for ``messages``.
        use_cv_bridge: decode encodings image_codec does not cover with cv_bridge, when it is installed
            (without it they are refused as unsupported).
    """

    def __init__(self, pipeline: DepthPipeline, messages: MessageFactory | None = None, *,
                 use_cv_bridge: bool = True):
        self.pipeline = pipeline
        self.factory = messages
        self.bridge = CvBridge() if use_cv_bridge and CvBridge is not None else None
        self.rectifier = Rectifier()

    def decode(self, msg) -> np.ndarray:
        """uint8 [H,W,3] RGB of a sensor_msgs/Image or CompressedImage (a message without ``encoding``).

        Raises:
            ImageDecodeError: unsupported encoding, bad layout, corrupt or truncated compressed data, or more
                than ``max_input_pixels`` pixels (its ``kind`` says which, for diagnostics).
        """
        return decode_message(msg, self.pipeline.params.max_input_pixels, self.bridge)

    def camera_frame(self, image, camera_info, *, require_camera: bool) -> CameraFrame:
        """``camera_frame`` with this path's parameters (max_input_pixels, rectify) and its rectification maps.

        Raises:
            FrameSkipped: as ``camera_frame``.
            OSError: an image file cannot be read.
        """
        params = self.pipeline.params
        return camera_frame(image, camera_info, require_camera=require_camera, max_pixels=params.max_input_pixels,
                            rectifier=self.rectifier if params.rectify else None, bridge=self.bridge)

    def prepare(self, image, camera_info, *, require_camera: bool) -> tuple[CameraFrame, PendingFrame]:
        """The frame sequence to the model input: ``camera_frame``, then the pipeline's ``prepare`` (resize).

        Raises:
            FrameSkipped: as ``camera_frame``.
            OSError: an image file cannot be read.
        """
        frame = self.camera_frame(image, camera_info, require_camera=require_camera)
        return frame, self.pipeline.prepare(frame.rgb, frame.camera)

    def run(self, rgb: np.ndarray, camera: CameraModel | None, outputs: Collection[str]) -> FrameResult:
        """The pipeline on one frame, computing what ``outputs`` (names of ``OUTPUT_TOPICS``) need.

        'points' needs a camera (without one no cloud is built); depth_std is kept for 'depth/uncertainty' and
        for the cloud's uncertainty filter. Depth is always computed.
        Raises:
            BackendError: inference failed.
        """
        return self.finish(self.pipeline.infer(self.pipeline.prepare(rgb, camera)), outputs)

    def finish(self, frame: PendingFrame, outputs: Collection[str]) -> FrameResult:
        """``run``'s last step on a frame that went through the pipeline's ``prepare`` and ``infer`` (the offline
        tool overlaps them across frames).

        Raises:
            BackendError: an output of the wrong shape.
        """
        want_cloud = 'points' in outputs
        want_std = 'depth/uncertainty' in outputs or (want_cloud and self.pipeline.params.uncertainty_threshold > 0)
        return self.pipeline.finish(frame, want_cloud=want_cloud, want_colored='depth/colored' in outputs,
                                    want_std=want_std)

    def messages(self, result: FrameResult, header, camera_info, outputs: Collection[str] = OUTPUT_TOPICS, *,
                 rectified: bool = False) -> dict[str, Any]:
        """``{topic: message}`` for each of ``outputs`` (in their order) that ``result`` has, each with ``header``.

        ``camera_info`` is the input's CameraInfo (copied but for the header) or None when the frame had no
        usable one (no depth/camera_info then); ``rectified`` (the frame went through ``rectify``) publishes the
        rectified camera instead (rectify.rectified_calibration: D zero, K from P, R identity).
        """
        new, out = self.factory, {}
        images = {'depth/colored': result.colored, 'depth/uncertainty': result.depth_std}
        for topic in outputs:
            if topic == 'depth/camera_info':
                if camera_info is not None:
                    out[topic] = copy_camera_info(new.camera_info(header), camera_info)
                    if rectified:
                        fill_calibration(out[topic], rectified_calibration(Calibration.from_camera_info(camera_info)))
            elif topic == 'points':
                if result.cloud is not None:
                    out[topic] = fill_pointcloud2(new.point_cloud2(header), result.cloud, new.point_field)
            elif topic == 'depth':  # encoded only when asked for: 16UC1 costs a rounding pass per frame
                depth = encode_depth(result.depth, self.pipeline.params.depth_encoding)
                out[topic] = fill_image(new.image(header), depth)
            elif images[topic] is not None:
                out[topic] = fill_image(new.image(header), images[topic])
        return out
