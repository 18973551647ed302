"""Fixtures of the node tests; the harness itself is test/ros_harness.py (shared with test/launch; test/ is on
sys.path through test/conftest.py, and a unique module name, since `from conftest import` would pick whichever
folder's conftest came first)."""
from __future__ import annotations

import pytest
from ros_harness import HEIGHT, WIDTH, Harness

from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx


@pytest.fixture(scope='session')
def model_path(tmp_path_factory) -> str:
    """depth = 2 + 4 * gray metres, depth_std = 0.5 * red * depth, focal 50 px at 64x48."""
    return build_synthetic_onnx(str(tmp_path_factory.mktemp('model') / 'tiny.onnx'), HEIGHT, WIDTH,
                                base=2.0, gain=4.0, std_ratio=0.5, focal_length=50.0)


@pytest.fixture
def harness_factory():
    made = []

    def make(model: str, **overrides) -> Harness:
        made.append(Harness(model, **overrides))
        return made[-1]

    yield make
    for harness in made:
        harness.close()
