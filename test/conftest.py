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
