"""Inference backends behind one interface, imported lazily so the node runs with only one installed.

Every backend takes the contract's input (docs/design.md section 3): ``image`` float32 [1,3,H,W] RGB in
0..1, and returns ``{'depth': float32 [1,1,H,W] metres}`` plus ``'depth_std'`` when the model has it.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

import numpy as np

#: backend name -> 'module:class'; the one list of backends (the node's parameter, the launch file's and
#: mono_depth_offline's choices read it)
BACKENDS = {
    'tensorrt': 'depth_kd_ros.backends.tensorrt_backend:TensorRTBackend',
    'onnxruntime': 'depth_kd_ros.backends.onnxruntime_backend:OnnxRuntimeBackend',
    'torch': 'depth_kd_ros.backends.torch_backend:TorchBackend',
}
#: TensorRT engine precisions, the default first (the node's trt_precision and the scripts' --precision read it)
PRECISIONS = ('fp16', 'fp32', 'int8')
#: devices of the onnxruntime and torch backends, the default first (the node's device, verify_trt's --ort-device)
DEVICES = ('cpu', 'cuda')


class BackendError(RuntimeError):
    """A backend cannot be created (not installed, model unreadable) or failed on a frame."""


class DepthBackend(ABC):
    """One loaded model. ``infer`` is called from one worker thread at a time."""

    name: str = ''
    #: output names the model provides, e.g. ('depth',) or ('depth', 'depth_std')
    output_names: tuple[str, ...] = ('depth',)

    @abstractmethod
    def infer(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model.

        Args:
            image: float32 [1,3,H,W], RGB in 0..1, H and W the model's input size.
        Returns:
            ``{'depth': float32 [1,1,H,W] metres, 'depth_std': ... (optional)}``.
        Raises:
            BackendError: the runtime failed on this input.
        """

    def close(self) -> None:  # noqa: B027 - a meant default, not a forgotten abstract method
        """Free what the runtime holds beyond Python references (device memory); the backend is unusable after.
        Nothing to do for runtimes that Python's garbage collection frees (onnxruntime, torch)."""


def create_backend(name: str, model_path: str, **options) -> DepthBackend:
    """Import and construct backend ``name`` (a key of ``BACKENDS``).

    Raises:
        BackendError: unknown name, backend library not installed, or model not loadable.
    """
    if name not in BACKENDS:
        raise BackendError(f'unknown backend {name!r}; valid: {sorted(BACKENDS)}')
    module_name, class_name = BACKENDS[name].split(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f'backend {name!r} is not available: {exc}') from exc
    return getattr(module, class_name)(model_path, **options)
