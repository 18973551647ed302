"""The pseudo-label teacher: a frozen metric teacher whose depth is the target where a recording has none.

Paper: DisDepth, arXiv 2404.16386, section 3.4 objective on the robot's frames (docs/design.md section 2):
without a depth topic, SILog(student) is taken against the teacher's depth on the same frames,

    target(I) = teacher(I)['depth']   [N,1,H,W] metres, NaN/inf -> 0 (invalid)

The ``recordings`` dataset is given one (``build_dataset(..., labeller=)``) and caches its labels per teacher
(``disdepth.data.recording_cache``); ``disdepth.build.build_labeller`` makes it from the config.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from disdepth.config import TeacherConfig
from disdepth.data.recording_cache import teacher_key
from disdepth.distill.teacher import check_metric_teacher


class LabelTeacher:
    """The frozen teacher of ``cfg``; the model is built (``build_model()``) only on a label-cache miss.

    Attributes:
        key: what its labels depend on (kind, path, the weights' fingerprint), for the label cache's file name.
        reference: what the metrics are compared against, e.g. 'teacher small /runs/teacher/best.pt'.
    Raises:
        TeacherError: at construction, before any frame is decoded, when the teacher's depth is not metric or
            not trained (``check_metric_teacher``).
    """

    def __init__(self, cfg: TeacherConfig, build_model: Callable[[], nn.Module]):
        check_metric_teacher(cfg)
        self.key = teacher_key(cfg)
        self.reference = f'teacher {cfg.kind} {cfg.path}'
        self.device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
        self._build_model, self._model = build_model, None

    @torch.no_grad()
    def depth(self, images: np.ndarray) -> np.ndarray:
        """images uint8 [N,H,W,3] RGB -> the teacher's depth, float32 [N,H,W] metres, 0 where not finite."""
        if self._model is None:
            self._model = self._build_model().to(self.device).eval().requires_grad_(False)
        image = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        depth = self._model(image)['depth'][:, 0].float().cpu().numpy()
        return np.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
