"""TensorRT engine cache: one engine per (model, precision), guarded by a key in a JSON sidecar.

Design.md section 3 / style_examples item 11. A serialized TensorRT engine is only valid for the exact
network, TensorRT version and GPU it was built on, and an INT8 engine also for the data it was calibrated
on, so an engine is reused only when all of

    key = (sha256(onnx file), TensorRT version, GPU name, compute capability, precision, input shape,
           INT8: sha256 of the calibration images (names and contents), else '')

match the sidecar written beside it (ros2_trt_pose keys by model name only and loads foreign engines).
Files in ``cache_dir``: ``<onnx stem>.<precision>.engine`` + ``<onnx stem>.<precision>.json``, and for
INT8 TensorRT's calibration cache ``<onnx stem>.<onnx sha256[:16]>.<calibration sha256[:16]>.calib``, one
per model and image set, so images B never reuse the ranges calibrated on images A. A stale engine is
overwritten in place, so the cache never grows with old builds. Writes are atomic (``atomic_file``) and the
sidecar is written last, so a crash mid-write leaves no sidecar and the next start
rebuilds instead of loading a truncated engine.

INT8 without a calibration folder (the node: it has no such parameter) uses the calibration recorded in
the sidecar of the model's INT8 engine, i.e. the one ``scripts/build_trt_engine.py --calibration-dir``
built; with a folder whose images differ from the recorded ones, the change is logged and the engine is
rebuilt on a fresh calibration.

No tensorrt or torch import here: the backend passes the TensorRT/GPU facts in, so this is unit-tested
on machines without a GPU.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from depth_kd_ros.backends import PRECISIONS
from depth_kd_ros.backends.calibration_images import CalibrationDataError, calibration_files
from depth_kd_ros.io.atomic_file import atomic_write_bytes

LOGGER = logging.getLogger(__name__)
CACHE_FORMAT = 2  # bump when the sidecar layout changes; old sidecars then read as stale (2: calibration)


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine depends on. Field names are the sidecar's JSON keys."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # 'major.minor', e.g. '8.7' for Jetson Orin
    precision: str  # 'fp32' | 'fp16' | 'int8'
    input_shape: tuple[int, ...]  # [1,3,H,W]
    calibration_sha256: str = ''  # int8: ``Int8Calibration.sha256`` of the images calibrated on; else ''

    def to_dict(self) -> dict:
        return dict(dataclasses.asdict(self), input_shape=list(self.input_shape), cache_format=CACHE_FORMAT)


@dataclass(frozen=True)
class CacheLookup:
    """Result of ``lookup``: ``engine_path`` set when usable, else ``reason`` says why not."""

    engine_path: Optional[Path]
    reason: str = ''


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes.

    Raises:
        OSError: the file is unreadable.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def make_key(onnx_path: str | Path, *, tensorrt_version: str, gpu_name: str, compute_capability: str,
             precision: str, input_shape, calibration_sha256: str = '') -> EngineKey:
    """Build the key for ``onnx_path`` (hashed here).

    Raises:
        ValueError: an unknown precision, or ``calibration_sha256`` given for a precision other than int8.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision {precision!r} is not one of {PRECISIONS}')
    if calibration_sha256 and precision != 'int8':
        raise ValueError(f'calibration data belongs to int8 engines only, not {precision}')
    return EngineKey(file_sha256(onnx_path), str(tensorrt_version), str(gpu_name), str(compute_capability),
                     precision, tuple(int(d) for d in input_shape), str(calibration_sha256))


def engine_paths(cache_dir: str | Path, onnx_path: str | Path, precision: str) -> tuple[Path, Path]:
    """(engine file, JSON sidecar) for this model and precision inside ``cache_dir``."""
    stem = f'{Path(onnx_path).stem}.{precision}'
    cache_dir = Path(cache_dir)
    return cache_dir / f'{stem}.engine', cache_dir / f'{stem}.json'


def key_differences(stored: dict, current: EngineKey) -> list[str]:
    """Human-readable list of key fields that differ, e.g. ``"tensorrt_version '8.6.2' -> '10.3.0'"``."""
    wanted = current.to_dict()
    return [f'{name} {stored.get(name)!r} -> {value!r}' for name, value in wanted.items()
            if stored.get(name) != value]


def lookup(cache_dir: str | Path, onnx_path: str | Path, key: EngineKey) -> CacheLookup:
    """Return the cached engine for ``key`` if it is usable; else log ``rebuilding engine: <reason>``.

    An engine is usable when its sidecar parses, every key field matches and the engine file's sha256
    equals the one recorded at build time (a truncated or swapped engine file is not loaded).
    """
    engine_path, sidecar_path = engine_paths(cache_dir, onnx_path, key.precision)
    reason = ''
    if not engine_path.is_file() or not sidecar_path.is_file():
        reason = f'no cached engine {engine_path.name} (with sidecar) in {cache_dir}'
    else:
        try:
            stored = json.loads(sidecar_path.read_text())
            if not isinstance(stored, dict):
                raise ValueError('not a JSON object')
        except (OSError, ValueError) as exc:
            stored, reason = {}, f'sidecar {sidecar_path} unreadable ({exc})'
        if not reason:
            changed = key_differences(stored.get('key', {}), key)
            if changed:
                reason = 'key changed: ' + '; '.join(changed)
            elif stored.get('engine_sha256') != file_sha256(engine_path):
                reason = f'{engine_path.name} does not match the sha256 recorded in its sidecar'
    if reason:
        LOGGER.warning('rebuilding engine: %s', reason)
        return CacheLookup(None, reason)
    return CacheLookup(engine_path)


def store(cache_dir: str | Path, onnx_path: str | Path, key: EngineKey, engine_bytes: bytes,
          calibration_source: str = '') -> Path:
    """Write the engine, then its sidecar (key + engine sha256 + where the INT8 calibration came from, for
    people and for ``int8_calibration``); return the engine path."""
    engine_path, sidecar_path = engine_paths(cache_dir, onnx_path, key.precision)
    sidecar_path.unlink(missing_ok=True)  # never leave an old sidecar vouching for a new engine
    atomic_write_bytes(engine_path, engine_bytes)
    sidecar = {'key': key.to_dict(), 'engine_sha256': hashlib.sha256(engine_bytes).hexdigest(),
               'onnx_path': str(Path(onnx_path).resolve()), 'calibration_source': calibration_source}
    atomic_write_bytes(sidecar_path, (json.dumps(sidecar, indent=2) + '\n').encode())
    return engine_path


def images_sha256(files: list[Path]) -> str:
    """Hex sha256 identifying a calibration set: each file's name and the sha256 of its bytes, in order.

    Two folders holding the same files give the same value; a changed, added, removed or renamed image
    changes it.

    Raises:
        OSError: a file is unreadable.
    """
    digest = hashlib.sha256()
    for path in files:
        digest.update(f'{Path(path).name}\0{file_sha256(path)}\n'.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Int8Calibration:
    """The data an INT8 engine is calibrated on: ``sha256`` goes into its key, ``cache_path`` is TensorRT's
    calibration cache for this model and these images, ``source`` says where they came from (for the log)."""

    sha256: str
    cache_path: Path
    source: str


def _recorded_calibration(cache_dir: Path, onnx_path: str | Path) -> tuple[str, str] | None:
    """(calibration sha256, source) from the sidecar of the model's INT8 engine, if one records them."""
    try:
        stored = json.loads(engine_paths(cache_dir, onnx_path, 'int8')[1].read_text())
        sha256 = stored['key']['calibration_sha256']
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (sha256, str(stored.get('calibration_source', ''))) if isinstance(sha256, str) and sha256 else None


def int8_calibration(cache_dir: str | Path, onnx_path: str | Path, onnx_sha256: str,
                     calibration_dir: str | Path | None) -> Int8Calibration:
    """The calibration of an INT8 engine of ``onnx_path`` (sha256 ``onnx_sha256``) in ``cache_dir``.

    With ``calibration_dir``: its images (``images_sha256``); a difference from the images
    recorded for the cached engine is logged. Without: the calibration recorded in the cached INT8 engine's
    sidecar (what ``build_trt_engine.py --calibration-dir`` built).

    Raises:
        CalibrationDataError: ``calibration_dir`` missing or without images; or no folder given and no INT8
            engine of this model in ``cache_dir`` that records its calibration.
    """
    cache_dir = Path(cache_dir)
    recorded = _recorded_calibration(cache_dir, onnx_path)
    if calibration_dir:
        files = calibration_files(calibration_dir)
        sha256, source = images_sha256(files), f'{calibration_dir} ({len(files)} images)'
        if recorded is not None and recorded[0] != sha256:
            LOGGER.warning('INT8 calibration data changed: %s, sha256 %s..., where the cached engine was '
                           'calibrated on %s, sha256 %s...: rebuilding on a fresh calibration', source,
                           sha256[:12], recorded[1] or 'other images', recorded[0][:12])
    elif recorded is not None:
        sha256, source = recorded
    else:
        raise CalibrationDataError(
            f'precision int8 needs calibration images: no INT8 engine of {Path(onnx_path).name} in {cache_dir} '
            'records its calibration; build one with scripts/build_trt_engine.py --precision int8 '
            '--calibration-dir <camera frames> (with the same cache folder)')
    cache_path = cache_dir / f'{Path(onnx_path).stem}.{onnx_sha256[:16]}.{sha256[:16]}.calib'
    return Int8Calibration(sha256, cache_path, source)
