"""Fixtures of the offline tool's tests (helpers live in offline_helpers.py, imported by name)."""
from __future__ import annotations

from pathlib import Path

import pytest

from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx


@pytest.fixture(scope='session')
def model_path(tmp_path_factory) -> Path:
    """The runtime's synthetic contract model (depth = 2 + 4 * gray, with depth_std), 48x64."""
    path = tmp_path_factory.mktemp('model') / 'synthetic.onnx'
    return Path(build_synthetic_onnx(str(path), std_ratio=0.1))
