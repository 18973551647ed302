"""Model file contract: read and check the exported student's metadata without running it.

Contract (docs/design.md section 3): input ``image`` float32 [1,3,H,W] RGB 0..1; output ``depth`` float32
[1,1,H,W] metres; optional ``depth_std`` [1,1,H,W] metres; metadata_props (strings) ``input_height``,
``input_width``, ``min_depth``, ``max_depth``, ``focal_length`` (px at the input size) and ``model_name``
(the required keys of docs/design.md section 3), plus ``training_dataset`` and ``export_version`` ("1"), which
export.py writes and which may be missing from another exporter's model (defaults below; ``ModelInfo.metadata_warning``
says so in one line, for the caller to log once). A .pt2 (torch.export) carries the same keys in its
extra file ``metadata.json``; its graph is checked by the torch backend, not here (no torch import).
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass

REQUIRED_KEYS = ('input_height', 'input_width', 'min_depth', 'max_depth', 'focal_length', 'model_name')
EXPORT_VERSION = '1'
#: keys our exporter writes that a hand-annotated model may lack -> the value assumed then
OPTIONAL_KEYS = {'training_dataset': 'unknown', 'export_version': EXPORT_VERSION}
OUTPUTS = ('depth', 'depth_std')
MODEL_SUFFIXES = ('.onnx', '.pt2')


class ModelFileError(ValueError):
    """The model file is missing, unreadable, or does not follow the contract (message says what)."""


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime needs to know about a model. Sizes in pixels, depths in metres."""

    input_height: int
    input_width: int
    min_depth: float
    max_depth: float
    focal_length: float  # pixels, at input_width x input_height, of the training camera
    model_name: str
    training_dataset: str
    outputs: tuple[str, ...] = ('depth',)
    export_version: str = EXPORT_VERSION
    defaulted_keys: tuple[str, ...] = ()  # OPTIONAL_KEYS the file lacked (their defaults are used)

    @property
    def has_uncertainty(self) -> bool:
        return 'depth_std' in self.outputs

    @property
    def metadata_warning(self) -> str:
        """One line naming the optional keys the model lacked and the defaults used, or '' if none."""
        if not self.defaulted_keys:
            return ''
        assumed = ', '.join(f'{key}={OPTIONAL_KEYS[key]!r}' for key in self.defaulted_keys)
        return (f'model {self.model_name}: metadata lacks {list(self.defaulted_keys)} (not exported by '
                f'training/export.py?); assuming {assumed}')


def info_from_metadata(metadata: dict[str, str], outputs: tuple[str, ...], source: str) -> ModelInfo:
    """Parse and check the metadata strings.

    A missing OPTIONAL_KEYS entry takes its default and is listed in ``defaulted_keys``.
    Raises:
        ModelFileError: a required key is missing or a value is invalid (the message names ``source`` and the key).
    """
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ModelFileError(f'{source}: metadata lacks {missing} (required: {list(REQUIRED_KEYS)})')
    defaulted = tuple(key for key in OPTIONAL_KEYS if key not in metadata)
    metadata = {**OPTIONAL_KEYS, **metadata}
    if str(metadata['export_version']) != EXPORT_VERSION:
        raise ModelFileError(f'{source}: export_version {metadata["export_version"]!r} is not supported '
                             f'(expected {EXPORT_VERSION!r}); re-export the model')
    try:
        height, width = int(metadata['input_height']), int(metadata['input_width'])
        min_depth, max_depth = float(metadata['min_depth']), float(metadata['max_depth'])
        focal = float(metadata['focal_length'])
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f'{source}: metadata value is not a number: {exc}') from exc
    if height <= 0 or width <= 0:
        raise ModelFileError(f'{source}: input size {width}x{height} must be positive')
    if not (math.isfinite(focal) and focal > 0):
        raise ModelFileError(f'{source}: focal_length {focal} must be a positive number of pixels')
    if not (math.isfinite(max_depth) and 0 <= min_depth < max_depth):
        raise ModelFileError(f'{source}: need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}')
    return ModelInfo(height, width, min_depth, max_depth, focal, str(metadata['model_name']),
                     str(metadata['training_dataset']), outputs, EXPORT_VERSION, defaulted)


def _onnx_shape(value_info) -> list:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField('dim_value') else (d.dim_param or '?') for d in dims]


def read_onnx_info(path: str) -> ModelInfo:
    """Read an ONNX model's metadata_props and check its graph inputs and outputs against the contract."""
    import onnx  # noqa: PLC0415 - only ONNX model files need it (a TensorRT or .pt2 robot may lack it)

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError, ... for a bad file
        raise ModelFileError(f'{path}: not a readable ONNX model ({type(exc).__name__}: {exc})') from exc
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [vi for vi in graph.input if vi.name not in initializers]
    if [vi.name for vi in inputs] != ['image']:
        raise ModelFileError(f'{path}: expected one input named "image", found {[vi.name for vi in inputs]}')
    outputs = {vi.name: vi for vi in graph.output}
    if 'depth' not in outputs:
        raise ModelFileError(f'{path}: no output named "depth" (outputs: {sorted(outputs)})')
    info = info_from_metadata({p.key: p.value for p in model.metadata_props},
                              tuple(name for name in OUTPUTS if name in outputs), path)
    expected = {'image': [1, 3, info.input_height, info.input_width],
                'depth': [1, 1, info.input_height, info.input_width],
                'depth_std': [1, 1, info.input_height, info.input_width]}
    for value_info in [inputs[0]] + [outputs[name] for name in info.outputs]:
        shape = _onnx_shape(value_info)
        if shape != expected[value_info.name]:
            raise ModelFileError(f'{path}: {value_info.name} has shape {shape}, expected '
                                 f'{expected[value_info.name]} (static, from metadata input_height/width)')
        if value_info.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise ModelFileError(f'{path}: {value_info.name} must be float32')
    return info


def read_pt2_info(path: str) -> ModelInfo:
    """Read ``metadata.json`` from a torch.export .pt2 archive (a zip) without importing torch."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.rsplit('/', 1)[-1] == 'metadata.json']
            if not names:
                raise ModelFileError(f'{path}: .pt2 archive has no extra file metadata.json')
            metadata = json.loads(archive.read(min(names, key=len)))
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError) as exc:
        raise ModelFileError(f'{path}: not a readable .pt2 archive ({exc})') from exc
    if not isinstance(metadata, dict):
        raise ModelFileError(f'{path}: metadata.json must hold an object')
    outputs = metadata.get('outputs', ['depth'])
    outputs = outputs.split(',') if isinstance(outputs, str) else list(outputs)
    return info_from_metadata({k: str(v) for k, v in metadata.items()},
                              tuple(name for name in OUTPUTS if name in outputs), path)


def read_model_info(path: str) -> ModelInfo:
    """ModelInfo of a model file, dispatched on the suffix (.onnx, .pt2).

    Raises:
        ModelFileError: missing file, unknown suffix, unreadable file, or contract violation.
    """
    if not path:
        raise ModelFileError('no model file given (parameter model_path is empty)')
    if os.path.isdir(path):
        inside = sorted(name for name in os.listdir(path) if name.lower().endswith(MODEL_SUFFIXES))
        raise ModelFileError(f'{path} is a folder, not a model file: give the .onnx (or .pt2) file itself'
                             + (f' (the folder has {inside[:3]})' if inside else ''))
    if not os.path.isfile(path):
        raise ModelFileError(f'model file not found: {path}')
    suffix = os.path.splitext(path)[1].lower()
    if suffix == '.onnx':
        return read_onnx_info(path)
    if suffix == '.pt2':
        return read_pt2_info(path)
    raise ModelFileError(f'{path}: unknown model file type {suffix!r} (expected .onnx or .pt2)')
