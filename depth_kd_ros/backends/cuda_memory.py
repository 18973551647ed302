"""Device buffers and a stream for the TensorRT backend, over cuda-python or PyCUDA (no torch).

TensorRT 10 takes raw device addresses (``context.set_tensor_address``) and a stream handle
(``execute_async_v3``); this module owns those allocations. cuda-python's runtime bindings
(``cuda.bindings.runtime``, or ``cuda.cudart`` before cuda-python 12.6) are preferred: they use the
runtime's per-thread primary context, so inference may run on any thread. PyCUDA is the fallback
(JetPack's python3-pycuda); its context is pushed around each use.

    H2D(host) -> device buffer -> [engine] -> device buffer -> D2H(host), all on one stream
"""
from __future__ import annotations

import numpy as np

from depth_kd_ros.backends import BackendError

CUDA_MISSING = ('no CUDA Python bindings for TensorRT buffers; install cuda-python (pip install cuda-python) '
                'or PyCUDA (python3-pycuda), or use backend:=onnxruntime')


class CudaMemory:
    """Device allocations, host staging arrays and one stream.

    Raises:
        BackendError: neither binding is installed, or a CUDA call fails (the message names it).
    """

    def __init__(self):
        try:
            from cuda.bindings import runtime as cudart  # noqa: PLC0415 - TensorRT only; either binding may be installed
        except ImportError:
            try:
                from cuda import cudart  # noqa: PLC0415 - the older cuda-python layout
            except ImportError:
                cudart = None
        self._rt, self._pycuda = cudart, None
        if cudart is None:
            try:
                import pycuda.autoinit as pycuda_autoinit  # noqa: PLC0415 - without cuda-python; creates the context
                import pycuda.driver as pycuda  # noqa: PLC0415 - without cuda-python, pycuda drives the copies
            except ImportError as exc:
                raise BackendError(CUDA_MISSING) from exc
            self._pycuda, self._context = pycuda, pycuda_autoinit.context
        self.stream = self._call('cudaStreamCreate') if cudart else pycuda.Stream()
        self._keep = []

    def __enter__(self):
        # PyCUDA contexts are bound to the thread that made them; the node infers on a worker thread
        if self._pycuda is not None:
            self._context.push()
        return self

    def __exit__(self, *exc):
        if self._pycuda is not None:
            self._pycuda.Context.pop()

    def _call(self, name, *args):
        err, *out = getattr(self._rt, name)(*args)
        if err != self._rt.cudaError_t.cudaSuccess:
            raise BackendError(f'CUDA {name} failed: {err}')
        return out[0] if len(out) == 1 else None

    def device(self) -> tuple[str, str]:
        """(GPU name, 'major.minor') of the current device."""
        if self._rt is not None:
            props = self._call('cudaGetDeviceProperties', self._call('cudaGetDevice'))
            name = props.name.decode(errors='replace') if isinstance(props.name, bytes) else str(props.name)
            return name.strip('\x00 '), f'{props.major}.{props.minor}'
        dev = self._pycuda.Context.get_device()
        return dev.name(), '{}.{}'.format(*dev.compute_capability())

    def malloc(self, nbytes: int) -> int:
        if self._rt is not None:
            ptr = self._call('cudaMalloc', nbytes)
            self._keep.append(ptr)
            return int(ptr)
        alloc = self._pycuda.mem_alloc(nbytes)
        self._keep.append(alloc)  # PyCUDA frees when the object dies
        return int(alloc)

    def host(self, shape, dtype) -> np.ndarray:
        # PyCUDA's async copies need page-locked host memory; cudart stages pageable memory itself
        return self._pycuda.pagelocked_empty(shape, dtype) if self._pycuda else np.empty(shape, dtype)

    def to_device(self, ptr: int, array: np.ndarray) -> None:
        if self._rt is not None:
            kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
            self._call('cudaMemcpyAsync', ptr, array.ctypes.data, array.nbytes, kind, self.stream)
        else:
            self._pycuda.memcpy_htod_async(ptr, array, self.stream)

    def to_host(self, array: np.ndarray, ptr: int) -> None:
        if self._rt is not None:
            kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
            self._call('cudaMemcpyAsync', array.ctypes.data, ptr, array.nbytes, kind, self.stream)
        else:
            self._pycuda.memcpy_dtoh_async(array, ptr, self.stream)

    @property
    def stream_handle(self) -> int:
        return int(self.stream) if self._rt is not None else self.stream.handle

    def synchronize(self) -> None:
        if self._rt is not None:
            self._call('cudaStreamSynchronize', self.stream)
        else:
            self.stream.synchronize()

    def close(self) -> None:
        if self._rt is not None:
            for ptr in self._keep:
                self._rt.cudaFree(ptr)
            self._rt.cudaStreamDestroy(self.stream)
        self._keep = []
