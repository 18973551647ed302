"""Suite-wide fixtures. The dev and CI machines have 2 shared cores: torch runs single-threaded in tests
(two intra-op threads per process were measured 3-8x slower per step under load), seeded, and restored."""
import sys

import pytest


@pytest.fixture(autouse=True)
def torch_single_thread_seeded():
    torch = sys.modules.get('torch')  # ROS and runtime tests never import torch; do not import it for them
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(previous)


def pytest_addoption(parser):
    parser.addoption('--slow-frame-scale', type=float, default=1.0, metavar='FACTOR',
                     help='multiply the frame time of the slow synthetic models (test/slow_model.py); 1/3 and 3 '
                          'check that the tests needing a frame in progress hold at other speeds')


@pytest.fixture
def slow_model(request, tmp_path):
    """make(frame_seconds, **model_kwargs) -> path of tmp_path/slow.onnx, a synthetic model whose frame takes
    about frame_seconds x --slow-frame-scale on one ONNX Runtime thread, measured now (test/slow_model.py)."""
    from slow_model import build_slow_model

    def make(frame_seconds: float, **model_kwargs) -> str:
        seconds = frame_seconds * request.config.getoption('slow_frame_scale')
        return build_slow_model(tmp_path / 'slow.onnx', seconds, **model_kwargs)
    return make
