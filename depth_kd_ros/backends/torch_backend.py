"""PyTorch backend: runs the exported student from its torch.export (.pt2) artifact, no training code.

Model contract: docs/design.md section 3. ``training/export.py --pt2 PATH`` saves the same wrapper as the ONNX
file with ``torch.export.save(ep, PATH, extra_files={'metadata.json': ...})``; the program returns
``depth`` or ``(depth, depth_std)`` in the order of metadata ``outputs``:

    depth[, depth_std] = torch.export.load(PATH).module()(image)     image float32 [1,3,H,W] RGB 0..1

torch is imported only here and only when the backend is created (the runtime imports without it).
"""
from __future__ import annotations

import numpy as np

from depth_kd_ros.backends import DEVICES, BackendError, DepthBackend
from depth_kd_ros.model_file import ModelFileError, read_model_info

TORCH_MISSING = 'PyTorch not installed; install torch or use backend:=onnxruntime with the .onnx model'


class TorchBackend(DepthBackend):
    """One loaded ``ExportedProgram`` module on ``device`` ('cpu' or 'cuda').

    Raises (constructor):
        BackendError: torch missing, not a .pt2 that follows the contract, or device unavailable.
    """

    name = 'torch'

    def __init__(self, model_path: str, device: str = 'cpu', num_threads: int = 0, **_unused):
        try:
            import torch  # noqa: PLC0415 - the runtime imports torch only when this backend is chosen
        except ImportError as exc:
            raise BackendError(TORCH_MISSING) from exc
        if not str(model_path).endswith('.pt2'):
            raise BackendError(f'torch backend needs a .pt2 file from training/export.py --pt2, got {model_path}')
        try:
            self.info = read_model_info(str(model_path))
        except ModelFileError as exc:
            raise BackendError(str(exc)) from exc
        if device not in DEVICES or (device == 'cuda' and not torch.cuda.is_available()):
            raise BackendError(f'torch: device {device!r} is not available (use cpu or cuda with a CUDA build)')
        if num_threads > 0:
            torch.set_num_threads(int(num_threads))
        try:
            program = torch.export.load(str(model_path))
        except Exception as exc:  # torch raises RuntimeError/KeyError/zip errors for foreign archives
            raise BackendError(f'torch: cannot load {model_path}: {type(exc).__name__}: {exc}') from exc
        self._torch, self.device = torch, torch.device(device)
        self.module = program.module().to(self.device)
        self.output_names = self.info.outputs

    def infer(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """image float32 [1,3,H,W] RGB 0..1 -> {'depth': [1,1,H,W] metres[, 'depth_std']}."""
        expected = (1, 3, self.info.input_height, self.info.input_width)
        if tuple(image.shape) != expected:
            raise BackendError(f'torch: input shape {tuple(image.shape)} != model input {expected}')
        try:
            with self._torch.no_grad():
                result = self.module(self._torch.from_numpy(np.ascontiguousarray(image)).to(self.device))
        except Exception as exc:  # one bad frame must not kill the node: callers count BackendError
            raise BackendError(f'torch: inference failed: {exc}') from exc
        values = result if isinstance(result, (tuple, list)) else (result,)
        return {name: value.detach().cpu().numpy() for name, value in zip(self.output_names, values, strict=True)}
