"""ONNX Runtime backend: runs the exported student on the CPU or CUDA execution provider.

Contract in docs/design.md section 3:
``image`` float32 [1,3,H,W] RGB 0..1 -> ``depth`` float32 [1,1,H,W] metres (+ optional ``depth_std``).
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from depth_kd_ros.backends import BackendError, DepthBackend
from depth_kd_ros.model_file import OUTPUTS

PROVIDERS = {'cpu': ['CPUExecutionProvider'],
             'cuda': ['CUDAExecutionProvider', 'CPUExecutionProvider']}


class OnnxRuntimeBackend(DepthBackend):
    """One ``InferenceSession``; ``num_threads`` 0 leaves ORT's default intra-op thread count.

    Raises (constructor):
        BackendError: a .pt2 file (a torch model), unknown device, CUDA requested but not available, or the
            model does not load.
    """

    name = 'onnxruntime'

    def __init__(self, model_path: str, device: str = 'cpu', num_threads: int = 0, **_unused):
        if str(model_path).lower().endswith('.pt2'):  # ORT would only report a protobuf parse error
            raise BackendError(f'onnxruntime: {model_path} is a torch model (.pt2, torch.export): use backend '
                               'torch, or give the .onnx export of the same model')
        if device not in PROVIDERS:
            raise BackendError(f'onnxruntime: unknown device {device!r}; valid: {sorted(PROVIDERS)}')
        if device == 'cuda' and 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise BackendError('onnxruntime: device cuda requested but CUDAExecutionProvider is not '
                               f'available (have {ort.get_available_providers()})')
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # idle intra-op threads would otherwise spin after each run and steal the CPU the rest of the
        # per-frame work (and the robot's other nodes) needs; measured in bench/bench_node.py
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        try:
            self.session = ort.InferenceSession(model_path, options, providers=PROVIDERS[device])
        except Exception as exc:  # ORT raises its own exception classes for unreadable models
            raise BackendError(f'onnxruntime: cannot load {model_path}: {exc}') from exc
        available = {o.name for o in self.session.get_outputs()}
        self.output_names = tuple(name for name in OUTPUTS if name in available)
        self.device = device

    def infer(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """image float32 [1,3,H,W] RGB 0..1 -> {'depth': [1,1,H,W] metres, ['depth_std']}."""
        try:
            values = self.session.run(list(self.output_names), {'image': image})
        except Exception as exc:  # one bad frame must not kill the node: callers count BackendError
            raise BackendError(f'onnxruntime: inference failed: {exc}') from exc
        return dict(zip(self.output_names, values, strict=True))
