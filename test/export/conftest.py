"""Export tests share 2 CPU cores with other jobs: run torch single-threaded, restore afterwards."""
import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(previous)
