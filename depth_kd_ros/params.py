"""Node parameters: one typed table (defaults, descriptions, ranges) shared by the node and the offline tool.

docs/design.md section 3 lists them. The node declares every field as a ROS parameter with a ParameterDescriptor
built from ``SPECS``; config/mono_depth.yaml holds the same names under ``mono_depth_node: ros__parameters:``.
Fields marked ``runtime`` can change while the node runs (parameter callback); the others need a restart.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from depth_kd_ros.backends import BACKENDS, DEVICES, PRECISIONS
from depth_kd_ros.colorize import COLORMAPS
from depth_kd_ros.io.depth_encoding import DEPTH_ENCODINGS

NODE_NAME = 'mono_depth_node'
#: scale_correction's choices ('ground_plane': ground_plane.GroundPlaneScale)
SCALE_CORRECTIONS = ('none', 'ground_plane')


class ParameterError(ValueError):
    """A parameter has a wrong type or value; the message starts with the parameter's name."""


def _spec(default, description: str, *, low=None, high=None, choices=None, runtime: bool = False):
    return field(default=default, metadata={'description': description, 'low': low, 'high': high,
                                            'choices': choices, 'runtime': runtime})


@dataclass(frozen=True)
class NodeParams:
    """All node parameters with their defaults. Depths and ranges in metres; 0 means 'use the model's'."""

    model_path: str = _spec('', 'Model file (.onnx; .pt2 for the torch backend). Required.')
    backend: str = _spec('onnxruntime', 'Inference backend.', choices=tuple(BACKENDS))
    device: str = _spec('cpu', 'Device for onnxruntime/torch (cuda uses the CUDA provider).',
                        choices=DEVICES)
    num_threads: int = _spec(0, 'Intra-op CPU threads for the backend (0: runtime default).', low=0, high=64)
    opencv_threads: int = _spec(1, 'OpenCV threads for resize and colour (process-wide; 0: OpenCV default). '
                                '1 measured faster for 640x480 frames on a busy CPU.', low=0, high=64)
    trt_precision: str = _spec('fp16', 'TensorRT engine precision.', choices=PRECISIONS)
    trt_cache_dir: str = _spec('', 'TensorRT engine cache directory (empty: the model folder if writable, '
                               'else the user cache).')
    input_transport: str = _spec('raw', "'raw' subscribes image (sensor_msgs/Image); 'compressed' "
                                 'subscribes image/compressed (sensor_msgs/CompressedImage).',
                                 choices=('raw', 'compressed'))
    input_reliable: bool = _spec(False, 'Subscribe to images reliably instead of best-effort sensor-data QoS '
                                 '(matches only reliable publishers; Fast DDS loses large best-effort frames).')
    max_input_pixels: int = _spec(3840 * 2160, 'Frames with more pixels are rejected (default: 4K UHD).',
                                  low=1, high=1 << 30)
    rectify: bool = _spec(False, 'Undistort and rectify each frame with its camera_info (K, D, R, P) before '
                          'inference, as image_proc does; outputs are then in the rectified geometry. Off for '
                          'image_rect, whose camera_info still carries the raw D.', runtime=True)
    resize_interpolation: str = _spec('area', "Shrinking to the model input: 'area' (antialiased, cv2 "
                                      "INTER_AREA) or 'linear' (faster, as torch bilinear); enlarging is "
                                      'always linear.', choices=('area', 'linear'), runtime=True)
    focal_scaling: bool = _spec(True, "Rescale depth by f_camera / f_train (model metadata 'focal_length').",
                                runtime=True)
    scale_correction: str = _spec('none', "Depth scale after focal scaling: 'none', or 'ground_plane' (depth x= "
                                  'camera_height / distance of the floor fitted below the horizon, smoothed over '
                                  'frames; ground_plane.py).', choices=SCALE_CORRECTIONS, runtime=True)
    camera_height: float = _spec(0.0, 'Metres from the floor to the camera optical centre; required (> 0) with '
                                 "scale_correction 'ground_plane'.", low=0.0, high=10.0, runtime=True)
    depth_encoding: str = _spec('32FC1', "The depth topic's encoding: '32FC1' (metres, NaN invalid) or '16UC1' "
                                '(millimetres, 0 invalid; deeper than 65.535 m invalid).', choices=DEPTH_ENCODINGS)
    publish_colored: bool = _spec(True, 'Publish depth/colored (bgr8 preview).', runtime=True)
    colormap: str = _spec('turbo', 'Colormap of depth/colored.',
                          choices=tuple(COLORMAPS), runtime=True)
    colored_min_depth: float = _spec(0.0, 'Depth at the start of the colormap (0: model min_depth).',
                                     low=0.0, high=1000.0, runtime=True)
    colored_max_depth: float = _spec(0.0, 'Depth at the end of the colormap (0: model max_depth).',
                                     low=0.0, high=1000.0, runtime=True)
    publish_points: bool = _spec(True, 'Publish points (PointCloud2).', runtime=True)
    points_stride: int = _spec(2, 'Use every n-th pixel in u and v for the cloud.', low=1, high=64, runtime=True)
    points_min_range: float = _spec(0.0, 'Drop points with z below this (metres).', low=0.0, high=1000.0,
                                    runtime=True)
    points_max_range: float = _spec(0.0, 'Drop points with z above this (0: model max_depth x focal scale).',
                                    low=0.0, high=1000.0, runtime=True)
    points_organized: bool = _spec(True, 'Organised cloud (NaN for invalid, is_dense=False) or only valid '
                                   'points.', runtime=True)
    points_rgb: bool = _spec(False, 'Add a PCL-packed float32 rgb field to the cloud.', runtime=True)
    uncertainty_threshold: float = _spec(0.0, 'Drop points with depth_std/depth above this (0: off).',
                                         low=0.0, high=100.0, runtime=True)
    output_reliable: bool = _spec(True, 'Reliable outputs (Fast DDS loses large best-effort messages).')
    output_qos_depth: int = _spec(2, 'History depth of the output publishers.', low=1, high=100)
    diagnostics_period: float = _spec(1.0, 'Seconds between /diagnostics messages (steady clock, also under '
                                      'use_sim_time).', low=0.1, high=60.0)
    hardware_id: str = _spec('', 'hardware_id of the /diagnostics status, naming the camera (empty: the input '
                             "images' frame_id).")
    log_throttle: float = _spec(5.0, 'Seconds between repeated log messages of one fault kind.',
                                low=0.0, high=3600.0)
    managed: bool = _spec(False, 'Lifecycle (managed) node, REP 2006: starts unconfigured; configure loads the model, '
                          'activate serves, deactivate stops, cleanup frees the model (ros2 lifecycle set, Nav2 '
                          'lifecycle manager). The other non-runtime parameters can then be set while unconfigured.')

    def __post_init__(self):
        validate(self)

    def replace(self, **changes: Any) -> NodeParams:
        """A validated copy with ``changes``.

        Raises:
            ParameterError: an unknown name or a bad value.
        """
        unknown = sorted(set(changes) - set(FIELD_NAMES))
        if unknown:
            raise ParameterError(f'{unknown[0]}: unknown parameter; valid: {sorted(FIELD_NAMES)}')
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SPECS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(NodeParams)}
FIELD_NAMES = tuple(SPECS)
RUNTIME_NAMES = tuple(name for name, f in SPECS.items() if f.metadata['runtime'])


def _check_value(name: str, value: Any) -> None:
    spec = SPECS[name]
    kind = type(spec.default)
    # bool is an int subclass and YAML/ROS give ints for floats ("5"), so check types by hand
    if kind is bool and not isinstance(value, bool):
        raise ParameterError(f'{name}: expected a bool, got {value!r}')
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ParameterError(f'{name}: expected an integer, got {value!r}')
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))
                          or not math.isfinite(value)):
        raise ParameterError(f'{name}: expected a finite number, got {value!r}')
    if kind is str and not isinstance(value, str):
        raise ParameterError(f'{name}: expected a string, got {value!r}')
    meta = spec.metadata
    if meta['choices'] is not None and value not in meta['choices']:
        raise ParameterError(f'{name}: {value!r} is not one of {list(meta["choices"])}')
    if meta['low'] is not None and not meta['low'] <= value <= meta['high']:
        raise ParameterError(f'{name}: {value!r} is outside [{meta["low"]}, {meta["high"]}]')


def validate(params: NodeParams) -> None:
    """Check every field's type and range, and the cross-field rules.

    Raises:
        ParameterError: naming the first bad parameter.
    """
    for name in FIELD_NAMES:
        _check_value(name, getattr(params, name))
    if params.colored_max_depth and params.colored_min_depth >= params.colored_max_depth:
        raise ParameterError('colored_min_depth: must be below colored_max_depth')
    if params.points_max_range and params.points_min_range >= params.points_max_range:
        raise ParameterError('points_min_range: must be below points_max_range')
    if params.scale_correction == 'ground_plane' and not params.camera_height > 0:
        raise ParameterError("camera_height: scale_correction 'ground_plane' needs the camera's height above the "
                             'floor in metres (> 0)')


def params_from_dict(values: dict[str, Any]) -> NodeParams:
    """NodeParams from a mapping (a params file's ros__parameters); ints are accepted for floats.

    Raises:
        ParameterError: unknown name, wrong type or value.
    """
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ParameterError(f'{unknown[0]}: unknown parameter; valid: {sorted(FIELD_NAMES)}')
    coerced = {}
    for name, value in values.items():
        if type(SPECS[name].default) is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        coerced[name] = value
    return NodeParams(**coerced)


def load_params_file(path: str, node_name: str = NODE_NAME) -> NodeParams:
    """Read a ROS 2 params file (``<node_name>: ros__parameters: {...}``; ``/**`` also accepted).

    Raises:
        ParameterError: unreadable file, missing section, unknown name or bad value.
    """
    try:
        with open(path, encoding='utf-8') as stream:
            document = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f'params file {path}: {exc}') from exc
    document = document or {}
    section = document.get(node_name, document.get('/**')) if isinstance(document, dict) else None
    if not isinstance(section, dict) or not isinstance(section.get('ros__parameters'), dict):
        raise ParameterError(f'params file {path}: expected "{node_name}: ros__parameters:" mapping')
    return params_from_dict(section['ros__parameters'])


def params_files_in_args(argv: list[str]) -> list[str]:
    """The files given as ``--params-file PATH`` inside the ``--ros-args ... [--]`` sections of ``argv``."""
    files, in_ros_args = [], False
    for index, token in enumerate(argv):
        if token == '--ros-args':
            in_ros_args = True
        elif token == '--':
            in_ros_args = False
        elif in_ros_args and token == '--params-file' and index + 1 < len(argv):
            files.append(argv[index + 1])
    return files


def unmatched_section_hint(params_files: list[str], node_fqn: str) -> str:
    """A hint for a params file whose section names this node but does not apply to it, or ''.

    rclpy applies a file's section only when its key is the node's fully qualified name or ``/**``
    (a key without a leading slash gets one: ``mono_depth_node:`` means ``/mono_depth_node``), so
    ``mono_depth_node:`` is silently ignored by a node in a namespace. A section counts as naming this node
    when its key's last component is the node's name (or NODE_NAME, for a renamed node); the hint is given
    when such a section exists and no key of that file applies to the node by name (``/**`` still
    leaves the named section unused, so it does not silence the hint). Unreadable files are skipped (rcl
    reports those itself).
    """
    namespace, _, name = node_fqn.rpartition('/')
    for path in params_files:
        try:
            with open(path, encoding='utf-8') as stream:
                document = yaml.safe_load(stream)
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(document, dict):
            continue
        keys = ['/' + key.lstrip('/') for key in document if isinstance(key, str)]
        named = [key for key in keys if key.rpartition('/')[2] in (name, NODE_NAME) and key != '/**']
        if named and node_fqn not in keys:
            where = f'namespace {namespace}' if namespace else 'the root namespace'
            return (f'params file {path}: its section {named[0]!r} does not apply to this node {node_fqn} '
                    f"({where}); key it '/**' (every node) or '{node_fqn}'")
    return ''
