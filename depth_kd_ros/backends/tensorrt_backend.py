"""TensorRT backend: build (or load from cache) an engine from the exported ONNX and run it.

All TensorRT code of the project lives in this module, written against the TensorRT 10 Python API
(named I/O tensors, ``execute_async_v3``), with TensorRT 8.6 explicit-batch networks where cheap.
Model contract: docs/design.md section 3 (input ``image`` float32 [1,3,H,W] RGB 0..1, output ``depth``
[1,1,H,W] metres, optional ``depth_std``). Engine cache: ``depth_kd_ros.backends.engine_cache``; INT8 inputs:
``depth_kd_ros.backends.calibration_images``.

    engine = deserialize(cache[key]) if key matches else build(parse(onnx), precision) -> cache[key]
    depth  = D2H(execute_async_v3(H2D(image)))

Device memory comes from ``depth_kd_ros.backends.cuda_memory`` (cuda-python or PyCUDA), so no torch is
needed on the robot. tensorrt and the CUDA bindings are imported only when a backend or a
build is requested, so this module imports (and its errors are tested) on machines without them.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from depth_kd_ros.backends import PRECISIONS, BackendError, DepthBackend, engine_cache
from depth_kd_ros.backends.calibration_images import CalibrationBatches, CalibrationDataError
from depth_kd_ros.backends.cuda_memory import CudaMemory
from depth_kd_ros.io.atomic_file import atomic_write_bytes
from depth_kd_ros.model_file import ModelFileError, read_model_info

LOGGER = logging.getLogger(__name__)
TRT_MISSING = ("TensorRT Python package not installed; install JetPack's python3-libnvinfer "
               'or use backend:=onnxruntime')
WORKSPACE_BYTES = 1 << 30  # builder scratch memory; Jetson shares it with the CPU, so keep it modest


def import_tensorrt():
    """Return the ``tensorrt`` module.

    Raises:
        BackendError: TensorRT is not installed (the message says how to install it).
    """
    try:
        import tensorrt as trt  # noqa: PLC0415 - only when this backend is chosen (Jetson, TensorRT installed)
    except ImportError as exc:
        raise BackendError(TRT_MISSING) from exc
    return trt


def default_cache_dir(model_path: str | Path) -> Path:
    """The model's folder when writable, else ``$XDG_CACHE_HOME/depth_kd_ros/tensorrt`` (per call).

    Installed models live in read-only share/ folders, hence the per-user fallback.
    """
    folder = Path(model_path).resolve().parent
    if os.access(folder, os.W_OK):
        return folder
    return Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'depth_kd_ros' / 'tensorrt'


def make_calibrator(trt, cuda: CudaMemory, batches: CalibrationBatches | None, cache_path: Path):
    """An IInt8EntropyCalibrator2 fed from ``batches``, reading/writing ``cache_path``.

    With ``batches`` None only an existing calibration cache can be used (TensorRT then skips get_batch).
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = iter(batches) if batches is not None else iter(())
            self._ptr = cuda.malloc(batches.nbytes) if batches is not None else 0

        def get_batch_size(self):
            return batches.batch_size if batches is not None else 1

        def get_batch(self, names):
            batch = next(self._batches, None)
            if batch is None:
                return None
            cuda.to_device(self._ptr, np.ascontiguousarray(batch, dtype=np.float32))
            cuda.synchronize()
            return [self._ptr]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            atomic_write_bytes(cache_path, bytes(cache))

    return EntropyCalibrator()


def build_engine(trt, cuda: CudaMemory, onnx_path: str | Path, precision: str, *, calibration_dir=None,
                 calibration_cache: Path | None = None, input_hw: tuple[int, int] | None = None) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine at ``precision`` (fp32 | fp16 | int8).

    INT8 enables FP16 too, so layers without an int8 kernel fall back to fp16 rather than fp32
    (trtexec ``--int8 --fp16``); its calibration cache defaults to ``<onnx>.calib`` and, once written,
    makes ``calibration_dir`` unnecessary, so give each calibration set its own cache path
    (``engine_cache.int8_calibration``).

    Raises:
        BackendError: the ONNX file does not parse, the build fails, or INT8 has no calibration data.
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split('.')[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f'TensorRT cannot parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision in ('fp16', 'int8'):
        config.set_flag(trt.BuilderFlag.FP16)
    calibrator = None
    if precision == 'int8':
        calibration_cache = Path(calibration_cache or Path(onnx_path).with_suffix('.calib'))
        if not calibration_dir and not calibration_cache.is_file():
            raise BackendError('precision int8 needs calibration_dir (a folder of images) '
                               f'or an existing calibration cache {calibration_cache}')
        height, width = input_hw if input_hw else tuple(network.get_input(0).shape)[2:]
        try:
            batches = CalibrationBatches(calibration_dir, height, width) if calibration_dir else None
        except CalibrationDataError as exc:
            raise BackendError(str(exc)) from exc
        if calibration_cache.is_file():
            LOGGER.info('INT8: reusing calibration cache %s', calibration_cache)
        else:
            LOGGER.info('INT8: calibrating on %d images of %s into %s', len(batches.files), calibration_dir,
                        calibration_cache)
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = make_calibrator(trt, cuda, batches, calibration_cache)
        config.int8_calibrator = calibrator  # the local name keeps it alive for the whole build
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f'TensorRT failed to build an engine from {onnx_path} at {precision}')
    return bytes(serialized)


class TensorRTBackend(DepthBackend):
    """Run an exported ONNX model through a cached TensorRT engine (built on first use on this device).

    Args:
        model_path: the exported .onnx (docs/design.md section 3); its metadata gives the input size.
        precision: 'fp16' (default), 'fp32' or 'int8'.
        cache_dir: engine cache folder ('' or None: ``default_cache_dir(model_path)``).
        calibration_dir: folder of images for INT8 calibration; its images' hash is part of the engine key.
            None: the calibration recorded with the cached INT8 engine (``engine_cache.int8_calibration``).
        **_unused: options meant for other backends (the node passes one set to any backend).
    Raises:
        BackendError: TensorRT or CUDA bindings missing, unreadable model, build failure.
    """

    name = 'tensorrt'

    def __init__(self, model_path: str | Path, precision: str = 'fp16', cache_dir: str | Path | None = None,
                 calibration_dir: str | Path | None = None, **_unused):
        trt = import_tensorrt()
        if precision not in PRECISIONS:
            raise BackendError(f'precision {precision!r} is not one of {PRECISIONS}')
        model_path = Path(model_path)
        if model_path.suffix.lower() != '.onnx':
            raise BackendError(f'tensorrt backend builds from the exported .onnx, got {model_path}')
        try:
            info = read_model_info(str(model_path))
        except ModelFileError as exc:
            raise BackendError(str(exc)) from exc
        self._cuda = CudaMemory()
        cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(model_path)
        gpu, capability = self._cuda.device()
        key = engine_cache.make_key(model_path, tensorrt_version=trt.__version__, gpu_name=gpu,
                                    compute_capability=capability, precision=precision,
                                    input_shape=(1, 3, info.input_height, info.input_width))
        calibration = None
        if precision == 'int8':  # the calibration images are part of an INT8 engine's key
            try:
                calibration = engine_cache.int8_calibration(cache_dir, model_path, key.onnx_sha256, calibration_dir)
            except (CalibrationDataError, OSError) as exc:  # OSError: an unreadable calibration image
                raise BackendError(str(exc)) from exc
            key = dataclasses.replace(key, calibration_sha256=calibration.sha256)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        found = engine_cache.lookup(cache_dir, model_path, key)
        engine = None
        if found.engine_path is not None:
            engine = self._runtime.deserialize_cuda_engine(found.engine_path.read_bytes())
            if engine is None:
                LOGGER.warning('rebuilding engine: %s failed to deserialize', found.engine_path)
        if engine is None:
            data = build_engine(trt, self._cuda, model_path, precision, calibration_dir=calibration_dir,
                                calibration_cache=calibration.cache_path if calibration else None,
                                input_hw=(info.input_height, info.input_width))
            stored = engine_cache.store(cache_dir, model_path, key, data, calibration.source if calibration else '')
            LOGGER.info('built TensorRT engine %s', stored)
            engine = self._runtime.deserialize_cuda_engine(data)
            if engine is None:
                raise BackendError(f'TensorRT cannot deserialize the engine it just built from {model_path}')
        self.engine_path = engine_cache.engine_paths(cache_dir, model_path, precision)[0]
        self._engine, self._exec = engine, engine.create_execution_context()
        self._inputs, self._outputs = {}, {}
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            host = self._cuda.host(tuple(engine.get_tensor_shape(name)), dtype)
            ptr = self._cuda.malloc(host.nbytes)
            self._exec.set_tensor_address(name, ptr)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self._inputs if is_input else self._outputs)[name] = (host, ptr)
        if 'image' not in self._inputs or 'depth' not in self._outputs:
            raise BackendError(f'{model_path}: engine I/O {sorted(self._inputs)} -> {sorted(self._outputs)} '
                               "does not follow the contract ('image' -> 'depth'[, 'depth_std'])")
        self.output_names = tuple(n for n in ('depth', 'depth_std') if n in self._outputs)

    def infer(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """image float32 [1,3,H,W] RGB 0..1 -> {'depth': [1,1,H,W] metres[, 'depth_std']}."""
        host, ptr = self._inputs['image']
        if tuple(image.shape) != host.shape:
            raise BackendError(f'input shape {tuple(image.shape)} != engine input {host.shape}')
        with self._cuda:
            np.copyto(host, image, casting='same_kind')
            self._cuda.to_device(ptr, host)
            if not self._exec.execute_async_v3(self._cuda.stream_handle):
                raise BackendError('TensorRT execute_async_v3 failed')
            for out_host, out_ptr in self._outputs.values():
                self._cuda.to_host(out_host, out_ptr)
            self._cuda.synchronize()
        return {name: self._outputs[name][0].astype(np.float32, copy=True) for name in self.output_names}

    def close(self) -> None:
        """Free device buffers (also safe to skip: process exit releases them)."""
        self._exec = self._engine = None
        self._cuda.close()
